import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { setTimeout as delay } from 'node:timers/promises';
import { Connection } from '@temporalio/client';
import { SEARCH_ATTRIBUTES } from '../core/search-attributes';
import { freePort, portOr } from './free-port';
import { findTool, TEMPORAL_CLI, ToolchainError } from './toolchain';

export interface DevServer {
  /** host:port of the frontend. */
  address: string;
  namespace: string;
  /** Web UI base URL, or undefined when headless. */
  uiUrl: string | undefined;
  stop(): Promise<void>;
}

export interface DevServerOptions {
  /** Frontend port; default: a free one. */
  port?: number;
  /** Web UI port; default: a free one. */
  uiPort?: number;
  /** Prefer these ports when free (for `tempoflow dev`: 7233 and 8233). */
  preferDefaultPorts?: boolean;
  headless?: boolean;
  /** Persist to this SQLite file; default: in memory. */
  dbFile?: string;
  namespace?: string;
  log?: (message: string) => void;
}

const TYPE_NAMES = { KEYWORD: 'Keyword', DATETIME: 'Datetime' } as const;

/**
 * Starts a Temporal dev server (`temporal server start-dev`) with tempoflow's search attributes. The CLI is
 * found or built (services/toolchain); where it cannot be, the Temporal SDK downloads one (needs internet).
 */
export async function startDevServer(options: DevServerOptions = {}): Promise<DevServer> {
  const namespace = options.namespace ?? 'default';
  const port = options.port ?? (options.preferDefaultPorts ? await portOr(7233) : await freePort());
  const uiPort = options.uiPort ?? (options.preferDefaultPorts ? await portOr(8233) : await freePort());
  const cli = await findTool(TEMPORAL_CLI, { build: true, ...(options.log ? { log: options.log } : {}) });
  if (!cli) return startDownloadedServer(port, uiPort, namespace, options);

  const args = [
    'server',
    'start-dev',
    '--ip', '127.0.0.1',
    '--port', String(port),
    '--http-port', String(await freePort()),
    '--metrics-port', String(await freePort()),
    '--namespace', namespace,
    '--log-level', 'error',
    ...(options.headless ? ['--headless'] : ['--ui-port', String(uiPort), '--ui-ip', '127.0.0.1']),
    ...(options.dbFile ? ['--db-filename', options.dbFile] : []),
    ...Object.entries(SEARCH_ATTRIBUTES).flatMap(([name, type]) => ['--search-attribute', `${name}=${TYPE_NAMES[type]}`]),
  ];
  const child = spawn(cli, args, { detached: true, stdio: ['ignore', 'ignore', 'pipe'] });
  killOnExit(child);
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => {
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

async function startDownloadedServer(port: number, uiPort: number, namespace: string, options: DevServerOptions): Promise<DevServer> {
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
      `no Temporal CLI: install Go (so tempoflow can build it), put 'temporal' on PATH, or set TEMPORAL_CLI_PATH (the SDK's download failed: ${(cause as Error).message})`,
      { cause },
    );
  }
}

async function waitForFrontend(address: string, child: ChildProcess, stderr: () => string): Promise<void> {
  let exited = false;
  child.once('exit', () => (exited = true));
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    if (exited) throw new ToolchainError(`the Temporal dev server exited at start: ${stderr().trim() || 'no output'}`);
    try {
      const connection = await Connection.connect({ address, connectTimeout: 1000 });
      try {
        await connection.workflowService.getSystemInfo({});
        return;
      } finally {
        await connection.close();
      }
    } catch {
      await delay(200);
    }
  }
  throw new ToolchainError(`the Temporal dev server did not answer on ${address} within 60s: ${stderr().trim()}`);
}

const owned = new Set<ChildProcess>();

/**
 * Kills `child`'s process group when this process exits, however it exits (test runners end with
 * `process.exit`, which skips async clean-up): servers never outlive the process that started them.
 */
export function killOnExit(child: ChildProcess): void {
  if (owned.size === 0) {
    process.once('exit', () => {
      for (const c of owned) {
        try {
          process.kill(-c.pid!, 'SIGKILL');
        } catch {
          // already gone
        }
      }
    });
  }
  owned.add(child);
  child.once('exit', () => owned.delete(child));
  // Nor do they keep it alive: a test file that started them must be able to end.
  child.unref();
  (child.stderr as { unref?: () => void } | null)?.unref?.();
}

/** SIGTERM to the process group, SIGKILL after 10s: no orphans. */
export async function stopProcess(child: ChildProcess): Promise<void> {
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
  const timer = setTimeout(() => signal('SIGKILL'), 10_000);
  await exited;
  clearTimeout(timer);
}
