/** A local Temporal dev server with an in-process worker: what `tempoflow dev` and `trigger --local` run. */
import type { Client } from '@temporalio/client';
import { startDevServer } from '../services/dev-server';
import { projectWorkerParts } from '../worker/load-project';
import { installRuntime, startWorker } from '../worker/main';
import type { StartedWorker } from '../worker/main';
import { resolveWorkerSettings } from '../worker/settings';
import type { WorkerSettings } from '../worker/settings';
import { TemporalConnectionConfig } from '../worker/temporal-config';
import { connectClient } from './connect';
import type { CliContext } from './context';
import { formatDuration } from './render';

export interface LocalStackOptions {
  taskQueue: string;
  /** Progress lines ("starting Temporal…"). */
  log: (line: string) => void;
  /** Serve the Web UI, on the usual ports when free (`tempoflow dev`); else headless on any free port. */
  ui: boolean;
  port?: number;
  uiPort?: number;
  dbFile?: string;
  /** Extra environment for the in-process worker's activities (e.g. the local S3 server's AWS_* variables). */
  workerEnv?: Record<string, string>;
}

export interface LocalStack {
  address: string;
  namespace: string;
  uiUrl: string | undefined;
  settings: WorkerSettings;
  client: Client;
  worker: StartedWorker;
  /** Runs the worker until `fn` settles (or until SIGINT/SIGTERM stops it). */
  runUntil<T>(fn: () => Promise<T>): Promise<T>;
  /** Stops the worker (if running), the connections and the server. Safe to call twice. */
  stop(): Promise<void>;
}

export async function startLocalStack(ctx: CliContext, options: LocalStackOptions): Promise<LocalStack> {
  const project = ctx.project(); // before any server starts: without a project there is nothing to run
  // `trigger --local` reports each task's failure in its table: the SDK's own warnings (a failed attempt, with its
  // stack and task token) would repeat it as noise. `tempoflow dev` is a worker's terminal and keeps them.
  if (!options.ui) installRuntime(ctx.globals.verbose ? 'WARN' : 'ERROR');
  const step = async <T>(what: string, fn: () => Promise<T>): Promise<T> => {
    const started = Date.now();
    options.log(`${what}…`);
    const result = await fn();
    options.log(`${what}: done in ${formatDuration(Date.now() - started)}`);
    return result;
  };
  const server = await step('starting a local Temporal server', () =>
    startDevServer({
      ...(options.ui ? { preferDefaultPorts: true } : { headless: true }),
      ...(options.port !== undefined ? { port: options.port } : {}),
      ...(options.uiPort !== undefined ? { uiPort: options.uiPort } : {}),
      ...(options.dbFile !== undefined ? { dbFile: options.dbFile } : {}),
    }),
  );
  const stops: (() => Promise<void>)[] = [() => server.stop()];
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    for (const fn of stops.reverse()) {
      try {
        await fn();
      } catch (err) {
        if (ctx.globals.verbose) ctx.err(`stopping: ${(err as Error).message}`);
      }
    }
  };
  ctx.onCleanup(stop);
  try {
    // The throwaway server takes no TLS or credentials, whatever TEMPORAL_TLS_*, TEMPORAL_API_KEY or a profile say.
    const temporal = TemporalConnectionConfig.plain(server.address, server.namespace);
    const settings = resolveWorkerSettings(
      { ...ctx.globalFlagOverrides(), taskQueue: options.taskQueue },
      { ...ctx.env, ...options.workerEnv },
      { temporal, ...(project.worker ? { project: project.worker } : {}) },
    );
    Object.assign(process.env, options.workerEnv ?? {});
    const parts = await projectWorkerParts(project, settings);
    const worker = await step('starting the worker', () =>
      startWorker(settings, { ...parts, workerOptions: { shutdownGraceTime: '5s' }, log: options.log }),
    );
    stops.push(() => worker.close());
    const { client, connection } = await connectClient(temporal);
    stops.push(() => connection.close());
    let running: Promise<unknown> | undefined;
    stops.push(async () => {
      if (worker.worker.getState() === 'RUNNING') worker.worker.shutdown();
      await running?.catch(() => undefined);
    });
    return {
      address: server.address,
      namespace: server.namespace,
      uiUrl: options.ui ? server.uiUrl : undefined,
      settings,
      client,
      worker,
      runUntil<T>(fn: () => Promise<T>): Promise<T> {
        const promise = worker.worker.runUntil(fn);
        running = promise;
        return promise;
      },
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}
