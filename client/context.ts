/** What every CLI command shares: global options, the Temporal client, output streams and exit handling. */
import type { Client } from '@temporalio/client';
import type { Command } from 'commander';
import { TempoflowError } from '../core/errors';
import { DEFAULT_ADDRESS, DEFAULT_NAMESPACE, DEFAULT_TASK_QUEUE } from '../worker/settings';
import type { WorkerSettingsOverrides } from '../worker/settings';
import { connectClient } from './connect';
import type { Connected } from './connect';
import { styleFor } from './render';
import type { Style } from './render';

export const DEFAULT_UI_URL = 'http://localhost:8233';

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
  private connected: Promise<Connected> | undefined;
  private cleanups: (() => Promise<void> | void)[] = [];

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
  }

  get globals(): GlobalOptions {
    const opts = this.program?.opts<Partial<GlobalOptions>>() ?? {};
    return {
      address: opts.address ?? DEFAULT_ADDRESS,
      namespace: opts.namespace ?? DEFAULT_NAMESPACE,
      taskQueue: opts.taskQueue ?? DEFAULT_TASK_QUEUE,
      verbose: Boolean(opts.verbose) || Boolean(this.env.DEBUG),
    };
  }

  /**
   * Global options given as flags on the command line (not from the environment or defaults), as worker
   * settings overrides: `resolveWorkerSettings` reads the environment itself, so its errors name the variable.
   */
  globalFlagOverrides(): WorkerSettingsOverrides {
    const overrides: WorkerSettingsOverrides = {};
    const g = this.globals;
    if (this.program?.getOptionValueSource('address') === 'cli') overrides.address = g.address;
    if (this.program?.getOptionValueSource('namespace') === 'cli') overrides.namespace = g.namespace;
    if (this.program?.getOptionValueSource('taskQueue') === 'cli') overrides.taskQueue = g.taskQueue;
    return overrides;
  }

  /** The Temporal client for the global `--address` and `--namespace` (connected once, closed at exit). */
  async client(): Promise<Client> {
    if (!this.connected) {
      const { address, namespace } = this.globals;
      this.connected = connectClient(address, namespace);
      this.onCleanup(async () => {
        const c = await this.connected?.catch(() => undefined);
        await c?.connection.close();
      });
    }
    return (await this.connected).client;
  }

  /** The Web UI's base URL (`TEMPORAL_UI_URL`, default http://localhost:8233). */
  uiUrl(): string {
    return (this.env.TEMPORAL_UI_URL || DEFAULT_UI_URL).replace(/\/+$/, '');
  }

  /** Link to a run in the Web UI. */
  runUrl(runId: string, base = this.uiUrl(), namespace = this.globals.namespace): string {
    return `${base}/namespaces/${encodeURIComponent(namespace)}/workflows/${encodeURIComponent(runId)}`;
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
