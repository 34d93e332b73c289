import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { setTimeout as delay } from 'node:timers/promises';
import { Connection } from '@temporalio/client';
import { SEARCH_ATTRIBUTES } from '../core/search-attributes';
import { freePort, portOr } from './free-port';
import { findTemporalCli } from './temporal-cli';
import { ToolchainError } from './toolchain';

export interface DevServer {
  /** host:port of the frontend. */
  address: string;
  namespace: string;
  /** Web UI base URL, or undefined when started headless. */
  uiUrl: string | undefined;
  stop(): Promise<void>;
}

export interface DevServerOptions {
  /** Frontend port; default: a free one. */
  port?: number;
  /** Web UI port; default: a free one. */
  uiPort?: number;
  /**
   * Prefer 7233 for the frontend and its port + 1000 for the Web UI (8233) when they are free, as the Temporal CLI
   * does (for `tempoflow dev` and the demo): the CLI then finds the Web UI without being told (`defaultUiUrl`).
   */
  preferDefaultPorts?: boolean;
  /** No Web UI (benchmarks). */
  headless?: boolean;
  /** Persist to this SQLite file; default: in memory. */
  dbFile?: string;
  namespace?: string;
  /** Dynamic config values (`--dynamic-config-value KEY=VALUE`, values as JSON), e.g. for benchmarks. */
  dynamicConfig?: Record<string, string | number | boolean>;
  log?: (message: string) => void;
}

function dynamicConfigArgs(options: DevServerOptions): string[] {
  return Object.entries(options.dynamicConfig ?? {}).flatMap(([key, value]) => [
    '--dynamic-config-value',
    `${key}=${JSON.stringify(value)}`,
  ]);
}

const TYPE_NAMES = { KEYWORD: 'Keyword', DATETIME: 'Datetime' } as const;

/**
 * tempoflow's search attributes as `temporal server start-dev --search-attribute` takes them. The worker
 * registers the same ones (core/search-attributes) on servers that lack them.
 */
export const TEMPOFLOW_SEARCH_ATTRIBUTES: readonly string[] = Object.entries(SEARCH_ATTRIBUTES).map(
  ([name, type]) => `${name}=${TYPE_NAMES[type]}`,
);

const START_ATTEMPTS = 3;

/**
 * Starts a Temporal dev server (`temporal server start-dev`) on 127.0.0.1 with tempoflow's search attributes,
 * and waits until its frontend answers. The CLI is found or built (services/temporal-cli); where it cannot
 * be, the Temporal SDK downloads one (needs internet).
 */
export async function startDevServer(options: DevServerOptions = {}): Promise<DevServer> {
  const namespace = options.namespace ?? 'default';
  const cli = await findTemporalCli({ build: true, ...(options.log ? { log: options.log } : {}) });
  // Free ports are picked then released, so another process can take one first: retry with fresh ones.
  const fixedPorts = options.port !== undefined && (options.headless || options.uiPort !== undefined);
  for (let attempt = 1; ; attempt++) {
    const port = options.port ?? (options.preferDefaultPorts ? await portOr(7233) : await freePort());
    const uiPort = options.uiPort ?? (options.preferDefaultPorts ? await portOr(port + 1000) : await freePort());
    try {
      return cli
        ? await startWithCli(cli, port, uiPort, namespace, options)
        : await startDownloadedServer(port, uiPort, namespace, options);
    } catch (err) {
      if (!cli || fixedPorts || attempt >= START_ATTEMPTS || !(err instanceof ExitedAtStartError)) throw err;
      options.log?.(`${err.message}; retrying on other ports`);
    }
  }
}

/** The server process ended before it answered (typically a port taken between choosing and binding it). */
class ExitedAtStartError extends ToolchainError {
  override name = 'ExitedAtStartError';
}

async function startWithCli(
  cli: string,
  port: number,
  uiPort: number,
  namespace: string,
  options: DevServerOptions,
): Promise<DevServer> {
  const args = [
    'server',
    'start-dev',
    '--ip',
    '127.0.0.1',
    '--port',
    String(port),
    '--namespace',
    namespace,
    '--log-level',
    'warn',
    ...(options.headless ? ['--headless'] : ['--ui-ip', '127.0.0.1', '--ui-port', String(uiPort)]),
    ...(options.dbFile ? ['--db-filename', options.dbFile] : []),
    ...dynamicConfigArgs(options),
    ...TEMPOFLOW_SEARCH_ATTRIBUTES.flatMap((attribute) => ['--search-attribute', attribute]),
  ];
  // Own process group, so stop() reaches anything it spawns.
  const child = spawn(cli, args, { detached: true, stdio: ['ignore', 'ignore', 'pipe'] });
  killOnExit(child);
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-4000);
  });
  const address = `127.0.0.1:${port}`;
  const stop = () => stopProcess(child);
  try {
    await waitForFrontend(address, child, () => stderr);
  } catch (err) {
    await stop();
    throw err;
  }
  return { address, namespace, uiUrl: options.headless ? undefined : `http://127.0.0.1:${uiPort}`, stop };
}

async function startDownloadedServer(
  port: number,
  uiPort: number,
  namespace: string,
  options: DevServerOptions,
): Promise<DevServer> {
  options.log?.('no Temporal CLI found and Go is not installed: letting the Temporal SDK download a dev server');
  const { TestWorkflowEnvironment } = await import('@temporalio/testing');
  const { defineSearchAttributeKey, SearchAttributeType } = await import('@temporalio/common');
  try {
    const env = await TestWorkflowEnvironment.createLocal({
      server: {
        ip: '127.0.0.1',
        port,
        namespace,
        ...(options.headless ? {} : { ui: true, uiPort }),
        ...(options.dbFile ? { dbFilename: options.dbFile } : {}),
        extraArgs: dynamicConfigArgs(options),
        searchAttributes: Object.entries(SEARCH_ATTRIBUTES).map(([name, type]) =>
          defineSearchAttributeKey(name, SearchAttributeType[type]),
        ),
      },
    });
    return {
      address: `127.0.0.1:${port}`,
      namespace,
      uiUrl: options.headless ? undefined : `http://127.0.0.1:${uiPort}`,
      stop: () => env.teardown(),
    };
  } catch (cause) {
    throw new ToolchainError(
      "no Temporal CLI, and the Temporal SDK could not download one: install Go (https://go.dev/dl) so tempoflow can build it, put 'temporal' on PATH, or set TEMPORAL_CLI_PATH",
      { cause },
    );
  }
}

async function waitForFrontend(address: string, child: ChildProcess, stderr: () => string): Promise<void> {
  let exited = child.exitCode !== null || child.signalCode !== null;
  child.once('exit', () => (exited = true));
  const deadline = Date.now() + 60_000;
  let lastError: unknown;
  while (Date.now() < deadline) {
    if (exited)
      throw new ExitedAtStartError(`the Temporal dev server exited at start: ${stderr().trim() || 'no output'}`);
    try {
      const connection = await Connection.connect({ address, connectTimeout: 1000 });
      try {
        await connection.workflowService.getSystemInfo({});
        return;
      } finally {
        await connection.close();
      }
    } catch (err) {
      lastError = err;
      await delay(200);
    }
  }
  throw new ToolchainError(`the Temporal dev server did not answer on ${address} within 60s: ${stderr().trim()}`, {
    cause: lastError,
  });
}

const owned = new Set<ChildProcess>();
const endHooks = new Set<() => void>();
let hooked = false;

function killOwned(): void {
  for (const child of owned) {
    try {
      process.kill(-child.pid!, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  for (const hook of endHooks) {
    try {
      hook();
    } catch {
      // best effort: the process is ending
    }
  }
}

/**
 * A fatal signal skips 'exit' handlers: when nobody else handles it, kill our children, then end this process
 * the way the signal would have. Whoever does handle it (the test harness, `tempoflow dev`) stops its servers
 * gracefully, and the 'exit' hook still catches what they miss.
 */
function onSignal(signal: NodeJS.Signals): void {
  if (process.listenerCount(signal) > 1) return;
  killOwned();
  process.removeListener(signal, onSignal);
  process.kill(process.pid, signal);
}

/**
 * Kills `child`'s process group when this process ends, however it ends: `process.exit` (test runners use
 * it, and it skips async clean-up) or a fatal signal such as Ctrl-C, which would skip 'exit' altogether.
 * Servers never outlive the process that started them.
 */
export function killOnExit(child: ChildProcess): void {
  hookProcessEnd();
  owned.add(child);
  child.once('exit', () => owned.delete(child));
  // Nor do they keep it alive: a test file that started them must be able to end.
  child.unref();
  (child.stderr as { unref?: () => void } | null)?.unref?.();
}

/**
 * Runs `hook` (synchronous: the process is ending) when this process exits or dies of a fatal signal, after
 * its servers are killed, e.g. to remove their temp dirs. Returns a function that unregisters it.
 */
export function atProcessEnd(hook: () => void): () => void {
  hookProcessEnd();
  endHooks.add(hook);
  return () => endHooks.delete(hook);
}

function hookProcessEnd(): void {
  if (hooked) return;
  hooked = true;
  process.once('exit', killOwned);
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(signal, onSignal);
}

/** SIGTERM to the process group, SIGKILL after `graceMs`: no orphans. */
export async function stopProcess(child: ChildProcess, graceMs = 10_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const signal = (sig: NodeJS.Signals) => {
    try {
      process.kill(-child.pid!, sig);
    } catch {
      child.kill(sig);
    }
  };
  signal('SIGTERM');
  const timer = setTimeout(() => signal('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
  // The leader is gone; make sure nothing it started lingers in its group.
  try {
    process.kill(-child.pid!, 'SIGKILL');
  } catch {
    // nothing left
  }
}
