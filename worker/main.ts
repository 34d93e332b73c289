import { existsSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { DefaultLogger, NativeConnection, Runtime } from '@temporalio/worker';
import type { LogLevel, Worker } from '@temporalio/worker';
import type { DagSnapshot, ActivityRecord } from '../core/types';
import {
  bundleWorkflows,
  createTempoflowWorker,
  ensureSearchAttributes,
  PREBUILT_BUNDLE_PATH,
  WORKFLOWS_PATH,
} from './create-worker';
import type { TempoflowWorkerOptions } from './create-worker';
import type { WorkerSettings } from './settings';

let runtimeInstalled = false;

/**
 * Installs Temporal's Runtime with a quiet logger (warnings and errors only, unless `level` says otherwise).
 * Must run before the first connection is made; later calls do nothing. The Runtime shuts workers down
 * gracefully on SIGINT/SIGTERM.
 */
export function installRuntime(level: LogLevel = 'WARN'): void {
  if (runtimeInstalled) return;
  runtimeInstalled = true;
  Runtime.install({
    logger: new DefaultLogger(level),
    telemetryOptions: {
      logging: { filter: { core: level === 'DEBUG' || level === 'TRACE' ? 'INFO' : 'WARN', other: 'ERROR' } },
    },
  });
}

export interface StartWorkerOptions {
  /** DAGs the worker runs (a project's `dags`). */
  dags: readonly DagSnapshot[];
  /** Task activities (a project's, built with `projectActivities(project, activityDepsFrom(settings))`). */
  activities: ActivityRecord;
  workerOptions?: TempoflowWorkerOptions['workerOptions'];
  workflowBundle?: TempoflowWorkerOptions['workflowBundle'];
  /** Where to say what the worker is doing (bundling, stale bundle); default: stderr. */
  log?: (line: string) => void;
}

export interface StartedWorker {
  worker: Worker;
  connection: NativeConnection;
  dags: readonly DagSnapshot[];
  /** Closes the connection (after the worker has stopped). */
  close(): Promise<void>;
}

/** Connects to Temporal, registers the search attributes if missing, and creates (does not run) a worker. */
export async function startWorker(settings: WorkerSettings, options: StartWorkerOptions): Promise<StartedWorker> {
  installRuntime();
  const { dags, activities } = options;
  const log = options.log ?? ((line: string) => console.error(line));
  const connection = await NativeConnection.connect(settings.temporal.connectionOptions());
  try {
    await ensureSearchAttributes(settings.temporal, settings.namespace);
    let workflowBundle = options.workflowBundle;
    if (!workflowBundle && (!existsSync(PREBUILT_BUNDLE_PATH) || prebuiltBundleIsStale())) {
      log(
        existsSync(PREBUILT_BUNDLE_PATH)
          ? 'dist/workflow-bundle.js is older than the workflow code: bundling afresh (run `npm run build` to update it)'
          : 'bundling the workflow code (run `npm run build` once to start faster)',
      );
      workflowBundle = await bundleWorkflows();
    }
    const worker = await createTempoflowWorker({
      connection,
      namespace: settings.namespace,
      taskQueue: settings.taskQueue,
      dags,
      activities,
      maxConcurrentActivities: settings.maxConcurrentActivities,
      workflowStackTraceFrames: settings.workflowStackTraceFrames,
      // A queue only this worker polls, so tasks can prefer the worker whose caches they use (docs/scaling.md).
      ownTaskQueue: process.env.TEMPOFLOW_OWN_TASK_QUEUE === '1',
      ...(settings.logLocation ? { logLocation: settings.logLocation } : {}),
      ...(workflowBundle ? { workflowBundle } : {}),
      ...(options.workerOptions ? { workerOptions: options.workerOptions } : {}),
    });
    return { worker, connection, dags, close: () => connection.close() };
  } catch (err) {
    await connection.close();
    throw err;
  }
}

/** Directories whose code ends up in the workflow bundle. */
const BUNDLED_DIRS = ['workflows', 'core'].map((d) => path.join(path.dirname(WORKFLOWS_PATH), '..', d));

/** True when a file bundled into the workflow code changed after `npm run build` wrote the prebuilt bundle. */
export function prebuiltBundleIsStale(): boolean {
  try {
    const built = statSync(PREBUILT_BUNDLE_PATH).mtimeMs;
    return BUNDLED_DIRS.some((dir) =>
      readdirSync(dir, { recursive: true, encoding: 'utf8' }).some(
        (file) => file.endsWith('.ts') && statSync(path.join(dir, file)).mtimeMs > built,
      ),
    );
  } catch {
    return false;
  }
}

/** One line describing a worker, for logs. */
export function describeWorker(settings: WorkerSettings, dags: readonly DagSnapshot[]): string {
  return (
    `tempoflow worker on ${settings.temporal.describe()} · task queue ${settings.taskQueue}` +
    ` · ${settings.maxConcurrentActivities} concurrent tasks · DAGs: ${dags.map((d) => d.id).join(', ')}` +
    (settings.logLocation ? ` · task logs in ${settings.logLocation}` : '')
  );
}

/**
 * Runs a worker for every DAG until SIGINT or SIGTERM, then shuts down gracefully: it stops polling, lets
 * running task attempts finish (up to the worker's shutdown grace time) and returns.
 */
export async function runWorker(
  settings: WorkerSettings,
  options: StartWorkerOptions & { log?: (line: string) => void },
): Promise<void> {
  const log = options.log ?? ((line: string) => console.error(line));
  const started = await startWorker(settings, { ...options, log });
  log(describeWorker(settings, started.dags));
  try {
    await started.worker.run();
    log('worker stopped');
  } finally {
    await started.close();
  }
}
