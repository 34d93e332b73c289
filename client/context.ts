/** What every CLI command shares: global options, the Temporal client, output streams and exit handling. */
import type { Client } from '@temporalio/client';
import type { Command } from 'commander';
import { TempoflowError } from '../core/errors';
import { findDag, ProjectError } from '../core/project';
import type { Project } from '../core/project';
import type { DagSnapshot } from '../core/types';
import { findProjectFile, loadProject, resolveProjectFile } from '../worker/load-project';
import { DEFAULT_ADDRESS, DEFAULT_NAMESPACE, DEFAULT_TASK_QUEUE } from '../worker/settings';
import type { WorkerSettingsOverrides } from '../worker/settings';
import { resolveTemporalConfig } from '../worker/temporal-config';
import type { TemporalConnectionConfig } from '../worker/temporal-config';
import { connectClient } from './connect';
import type { Connected } from './connect';
import { styleFor } from './render';
import type { Style } from './render';

/**
 * Where the Web UI of the server at `address` is, when that can be known without being told: on this machine, the
 * frontend port + 1000 (where `temporal server start-dev` and `tempoflow dev` serve it: 7233 → 8233); Temporal
 * Cloud's own UI for a `*.tmprl.cloud` address. Anything else needs `TEMPORAL_UI_URL`.
 */
export function defaultUiUrl(address: string): string | undefined {
  const colon = address.lastIndexOf(':');
  const host = address
    .slice(0, colon)
    .replace(/^\[(.*)\]$/, '$1')
    .toLowerCase();
  const port = Number(address.slice(colon + 1));
  if (['127.0.0.1', 'localhost', '::1'].includes(host) && Number.isInteger(port) && port + 1000 <= 65535) {
    return `http://${host === '::1' ? '[::1]' : host}:${port + 1000}`;
  }
  if (host.endsWith('.tmprl.cloud')) return 'https://cloud.temporal.io';
  return undefined;
}

export interface GlobalOptions {
  address: string;
  namespace: string;
  taskQueue: string;
  verbose: boolean;
}

/**
 * Ends the command with an exit code. `message` (when given) is printed to stderr as is; commands that already
 * printed their explanation throw it without one.
 */
export class CliExit extends Error {
  override name = 'CliExit';
  constructor(
    readonly exitCode: number,
    message = '',
  ) {
    super(message);
  }
}

/** A usage mistake found after parsing (exit 2), e.g. `--from` without `--to`. */
export class UsageError extends TempoflowError {
  override name = 'UsageError';
}

/** Fields of the client library whose option has another name (`retryRun`'s `tasks` is the repeatable `--task`). */
const FIELD_OPTIONS: Record<string, string> = { tasks: 'task' };

export interface CliIo {
  stdout: NodeJS.WriteStream;
  stderr: NodeJS.WriteStream;
  env: NodeJS.ProcessEnv;
}

export class CliContext {
  readonly stdout: NodeJS.WriteStream;
  readonly stderr: NodeJS.WriteStream;
  readonly env: NodeJS.ProcessEnv;
  /** Colours for stdout and stderr (off when piped). */
  readonly style: Style;
  readonly errStyle: Style;
  private program: Command | undefined;
  /** The command whose action runs (set before it runs), whose options name the fields of its errors. */
  private actionCommand: Command | undefined;
  private connected: Promise<Connected> | undefined;
  private resolvedTemporal: { key: string; config: TemporalConnectionConfig } | undefined;
  private cleanups: (() => Promise<void> | void)[] = [];
  private loaded: { file: string; project: Project } | undefined;

  constructor(io: Partial<CliIo> = {}) {
    this.stdout = io.stdout ?? process.stdout;
    this.stderr = io.stderr ?? process.stderr;
    this.env = io.env ?? process.env;
    this.style = styleFor(this.stdout, this.env);
    this.errStyle = styleFor(this.stderr, this.env);
  }

  /** Called once by the program builder. */
  attach(program: Command): void {
    this.program = program;
    program.hook('preAction', (_program, actionCommand) => {
      this.actionCommand = actionCommand;
    });
  }

  /**
   * The flag for a field that the client library names (in an `InvalidFieldError`): `maxActive` is `--max-active`.
   * The running command's option of that name, else a global option, else the field's name.
   */
  flagFor(field: string): string {
    const name = FIELD_OPTIONS[field] ?? field;
    for (const command of [this.actionCommand, this.program]) {
      const option = command?.options.find((o) => o.attributeName() === name);
      if (option) return option.long ?? option.short ?? field;
    }
    return field;
  }

  /** The global options; the address and namespace as the Temporal connection resolves them (flag, env, profile). */
  get globals(): GlobalOptions {
    const opts = this.program?.opts<Partial<GlobalOptions>>() ?? {};
    let temporal: TemporalConnectionConfig | undefined;
    try {
      temporal = this.temporal();
    } catch {
      // A bad setting is reported by the command that connects; names in messages fall back to the flags.
    }
    return {
      address: temporal?.address ?? opts.address ?? DEFAULT_ADDRESS,
      namespace: temporal?.namespace ?? opts.namespace ?? DEFAULT_NAMESPACE,
      taskQueue:
        (this.program?.getOptionValueSource('taskQueue') === 'default'
          ? this.loaded?.project.worker?.taskQueue
          : undefined) ??
        opts.taskQueue ??
        DEFAULT_TASK_QUEUE,
      verbose: Boolean(opts.verbose) || Boolean(this.env.DEBUG),
    };
  }

  /**
   * Global options given as flags on the command line (not from the environment or defaults), as worker
   * settings overrides: `resolveWorkerSettings` reads the environment itself, so its errors name the variable.
   */
  globalFlagOverrides(): WorkerSettingsOverrides {
    const overrides: WorkerSettingsOverrides = {};
    const opts = this.program?.opts<Partial<GlobalOptions>>() ?? {};
    if (this.program?.getOptionValueSource('address') === 'cli') overrides.address = opts.address;
    if (this.program?.getOptionValueSource('namespace') === 'cli') overrides.namespace = opts.namespace;
    if (this.program?.getOptionValueSource('taskQueue') === 'cli') overrides.taskQueue = opts.taskQueue;
    return overrides;
  }

  /**
   * The connection to Temporal: `--address`/`--namespace` flags, then Temporal's environment configuration
   * (TEMPORAL_* variables, the profile file). Throws a TempoflowError naming a bad variable or file.
   */
  temporal(): TemporalConnectionConfig {
    const { address, namespace } = this.globalFlagOverrides();
    const flags = { ...(address !== undefined ? { address } : {}), ...(namespace !== undefined ? { namespace } : {}) };
    const key = JSON.stringify(flags);
    if (this.resolvedTemporal?.key !== key)
      this.resolvedTemporal = { key, config: resolveTemporalConfig(flags, this.env) };
    return this.resolvedTemporal.config;
  }

  /** The Temporal client for `temporal()` (connected once, closed at exit). */
  async client(): Promise<Client> {
    if (!this.connected) {
      this.connected = Promise.resolve().then(() => connectClient(this.temporal()));
      this.onCleanup(async () => {
        const c = await this.connected?.catch(() => undefined);
        await c?.connection.close();
      });
    }
    return (await this.connected).client;
  }

  /**
   * Loads the project before the program is built (its commands join the CLI): the file `--project` names,
   * else `tempoflow.config.*` in the working directory when there is one. A missing `--project` file or a
   * broken project file is a ProjectError (exit 2).
   */
  async loadProject(given: string | undefined, cwd: string = process.cwd()): Promise<void> {
    const file = given !== undefined ? resolveProjectFile(given, cwd) : findProjectFile(cwd);
    if (file) this.loaded = { file, project: await loadProject(file) };
  }

  /** The loaded project; a ProjectError saying how to get one when there is none. */
  project(): Project {
    if (!this.loaded) resolveProjectFile(undefined); // throws, naming the folder searched
    if (!this.loaded) throw new ProjectError('no project loaded');
    return this.loaded.project;
  }

  /** The project file's path, when a project is loaded. */
  get projectFile(): string | undefined {
    return this.loaded?.file;
  }

  /** The project's DAG with this id (an UnknownDagError lists the known ones). */
  getDag(id: string): DagSnapshot {
    return findDag(this.project().dags, id);
  }

  /** The Web UI's base URL: `TEMPORAL_UI_URL`, else `defaultUiUrl` of the address; undefined when unknown. */
  uiUrl(): string | undefined {
    const set = this.env.TEMPORAL_UI_URL;
    return set ? set.replace(/\/+$/, '') : defaultUiUrl(this.globals.address);
  }

  /** Link to a run in the Web UI, when its address is known. */
  runUrl(runId: string, base = this.uiUrl(), namespace = this.globals.namespace): string | undefined {
    return base && `${base}/namespaces/${encodeURIComponent(namespace)}/workflows/${encodeURIComponent(runId)}`;
  }

  out(text = ''): void {
    this.stdout.write(`${text}\n`);
  }

  err(text = ''): void {
    this.stderr.write(`${text}\n`);
  }

  /** Prints a JSON document on stdout (the only thing a `--json` command prints there). */
  json(value: unknown): void {
    this.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
  }

  warn(text: string): void {
    this.err(`${this.errStyle.yellow('warning:')} ${text}`);
  }

  /** Registers something to close when the command ends (connections, servers), last registered first. */
  onCleanup(fn: () => Promise<void> | void): void {
    this.cleanups.unshift(fn);
  }

  async close(): Promise<void> {
    const cleanups = this.cleanups;
    this.cleanups = [];
    for (const fn of cleanups) {
      try {
        await fn();
      } catch (err) {
        if (this.globals.verbose) this.err(`cleanup failed: ${(err as Error).message}`);
      }
    }
  }
}
