import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Connection } from '@temporalio/client';
import { bundleWorkflowCode, DefaultLogger, NativeConnection, Worker } from '@temporalio/worker';
import type { WorkerOptions } from '@temporalio/worker';
import { TempoflowError } from '../core/errors';
import { SEARCH_ATTRIBUTES } from '../core/search-attributes';
import type { DagSnapshot, ActivityRecord } from '../core/types';
import { createAlertActivities } from './alerts';
import { createFrameworkActivities } from './framework-activities';
import { DEFAULT_MAX_CONCURRENT_ACTIVITIES, DEFAULT_NAMESPACE, DEFAULT_TASK_QUEUE } from './settings';
import { checkActivitiesCover, wrapTaskActivities } from './task-activities';
import { TaskLogs } from './task-logs';
import type { TemporalConnectionConfig } from './temporal-config';

/** True for the gRPC statuses an operator call ends with where the caller may not make it. */
function isNotAllowed(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  const PERMISSION_DENIED = 7;
  const UNIMPLEMENTED = 12;
  return code === PERMISSION_DENIED || code === UNIMPLEMENTED;
}

export const WORKFLOWS_PATH = fileURLToPath(new URL('../workflows/index.ts', import.meta.url));
/** Written by `npm run build`; used when present so production workers skip bundling at start. */
export const PREBUILT_BUNDLE_PATH = fileURLToPath(new URL('../dist/workflow-bundle.js', import.meta.url));

/** cron-parser (used by the runner for scheduled intervals) can read crontab files; workflows never do. */
const BUNDLER_OPTIONS = { ignoreModules: ['fs', 'fs/promises'] };

/** Bundles the workflow code (for `npm run build` and tests, which bundle once and reuse the bundle). */
export async function bundleWorkflows(): Promise<{ code: string }> {
  return bundleWorkflowCode({
    workflowsPath: WORKFLOWS_PATH,
    ...BUNDLER_OPTIONS,
    logger: new DefaultLogger('WARN'),
  });
}

export interface TempoflowWorkerOptions {
  connection: NativeConnection;
  namespace?: string;
  taskQueue?: string;
  dags: readonly DagSnapshot[];
  activities: ActivityRecord;
  /** Task instances one worker runs at once (default `DEFAULT_MAX_CONCURRENT_ACTIVITIES` of settings.ts). */
  maxConcurrentActivities?: number;
  /** Use a prebuilt workflow bundle (`npm run build`, or `bundleWorkflowCode`) instead of bundling at start. */
  workflowBundle?: { codePath: string } | { code: string };
  /** Where task logs are kept (a folder or `s3://bucket/prefix`); none when absent. */
  logLocation?: string;
  /** Passed through to `Worker.create` (e.g. `shutdownGraceTime`). */
  workerOptions?: Partial<WorkerOptions>;
}

/** Creates a worker that hosts the runner workflows and the given task activities. */
export async function createTempoflowWorker(options: TempoflowWorkerOptions): Promise<Worker> {
  checkActivitiesCover(options.dags, options.activities);
  const bundle =
    options.workflowBundle ?? (existsSync(PREBUILT_BUNDLE_PATH) ? { codePath: PREBUILT_BUNDLE_PATH } : undefined);
  return Worker.create({
    connection: options.connection,
    namespace: options.namespace ?? DEFAULT_NAMESPACE,
    taskQueue: options.taskQueue ?? DEFAULT_TASK_QUEUE,
    ...(bundle ? { workflowBundle: bundle } : { workflowsPath: WORKFLOWS_PATH, bundlerOptions: BUNDLER_OPTIONS }),
    activities: {
      ...wrapTaskActivities(
        options.activities,
        options.logLocation ? new TaskLogs(options.logLocation) : undefined,
      ),
      ...createFrameworkActivities(),
      ...createAlertActivities(options.activities),
    },
    maxConcurrentActivityTaskExecutions: options.maxConcurrentActivities ?? DEFAULT_MAX_CONCURRENT_ACTIVITIES,
    shutdownGraceTime: '10s',
    ...options.workerOptions,
  });
}

/**
 * Registers tempoflow's search attributes on servers that lack them (the dev server started by tempoflow has
 * them already). Without them the runner could not record `DagRunState`. `temporal` is a plain address or a
 * resolved connection (TLS, API key). Where the caller may not add them (Temporal Cloud, a restricted role), the
 * error says which to add and how.
 */
export async function ensureSearchAttributes(
  temporal: string | TemporalConnectionConfig,
  namespace: string,
): Promise<void> {
  const options = typeof temporal === 'string' ? { address: temporal } : temporal.connectionOptions();
  const connection = await Connection.connect(options);
  try {
    let customAttributes: Record<string, unknown> | null | undefined;
    try {
      ({ customAttributes } = await connection.operatorService.listSearchAttributes({ namespace }));
    } catch (err) {
      // Some clusters do not let this caller list them; docs/production.md asks to add them beforehand there.
      if (isNotAllowed(err)) return;
      throw err;
    }
    const missing = Object.entries(SEARCH_ATTRIBUTES).filter(([name]) => !(name in (customAttributes ?? {})));
    if (!missing.length) return;
    const types = { KEYWORD: 2, DATETIME: 5 } as const; // temporal.api.enums.v1.IndexedValueType
    try {
      await connection.operatorService.addSearchAttributes({
        namespace,
        searchAttributes: Object.fromEntries(missing.map(([name, type]) => [name, types[type]])),
      });
    } catch (err) {
      if (!isNotAllowed(err)) throw err;
      const wanted = missing.map(([name, type]) => `${name} (${type === 'KEYWORD' ? 'Keyword' : 'Datetime'})`);
      throw new TempoflowError(
        `namespace '${namespace}' lacks tempoflow's search attributes ${wanted.join(', ')} and this connection may not add them: ` +
          `add them once with \`temporal operator search-attribute create\` (self-hosted) or ` +
          `\`tcld namespace search-attributes add\` / the Cloud UI (Temporal Cloud)`,
        { cause: err },
      );
    }
  } finally {
    await connection.close();
  }
}
