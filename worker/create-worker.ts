import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { hostname } from 'node:os';
import { setFlagsFromString } from 'node:v8';
import { fileURLToPath } from 'node:url';
import { Connection } from '@temporalio/client';
import { bundleWorkflowCode, DefaultLogger, NativeConnection, Worker } from '@temporalio/worker';
import type { WorkerOptions } from '@temporalio/worker';
import protos from '@temporalio/proto';
import { TempoflowError } from '../core/errors';
import { SEARCH_ATTRIBUTES } from '../core/search-attributes';
import type { DagSnapshot, ActivityRecord } from '../core/types';
import { createAlertActivities } from './alerts';
import { createFrameworkActivities } from './framework-activities';
import {
  DEFAULT_MAX_CONCURRENT_ACTIVITIES,
  DEFAULT_NAMESPACE,
  DEFAULT_TASK_QUEUE,
  DEFAULT_WORKFLOW_STACK_TRACE_FRAMES,
} from './settings';
import { checkActivitiesCover, wrapTaskActivities } from './task-activities';
import { TaskLogs } from './task-logs';
import type { TemporalConnectionConfig } from './temporal-config';

// A CommonJS module whose exports Node cannot name from ESM: imported whole.
const { IndexedValueType } = protos.temporal.api.enums.v1;
const INDEXED_VALUE_TYPE = {
  KEYWORD: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
  DATETIME: IndexedValueType.INDEXED_VALUE_TYPE_DATETIME,
} as const;

/** A search attribute type as `temporal operator search-attribute` names it: `Datetime`, `Bool`. */
function typeName(type: number | undefined): string {
  const name = (IndexedValueType[type ?? 0] ?? 'INDEXED_VALUE_TYPE_UNSPECIFIED').replace('INDEXED_VALUE_TYPE_', '');
  return name === 'KEYWORD_LIST' ? 'KeywordList' : name.charAt(0) + name.slice(1).toLowerCase();
}

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
  /**
   * Also poll a task queue only this worker polls (`true`: `<taskQueue>@<host>-<pid>-<random>`, or the name
   * given), passed to task activities as `ctx.workerQueue`, so downstream tasks with `preferWorkerOf` can prefer
   * this worker (its local caches). Its activities have their own slots (`maxConcurrentActivities` again).
   */
  ownTaskQueue?: boolean | string;
  /**
   * Frames in stack traces taken inside workflow code: the Web UI's "Stack Trace" of a run and the runner's own
   * errors (default `DEFAULT_WORKFLOW_STACK_TRACE_FRAMES`, none; 10 is V8's own). Applies to the workflow contexts
   * the worker creates at start, that is with the SDK's default `reuseV8Context`.
   */
  workflowStackTraceFrames?: number;
}

/** Creates a worker that hosts the runner workflows and the given task activities. */
export async function createTempoflowWorker(options: TempoflowWorkerOptions): Promise<Worker> {
  checkActivitiesCover(options.dags, options.activities);
  const bundle =
    options.workflowBundle ?? (existsSync(PREBUILT_BUNDLE_PATH) ? { codePath: PREBUILT_BUNDLE_PATH } : undefined);
  const taskQueue = options.taskQueue ?? DEFAULT_TASK_QUEUE;
  const ownQueue =
    options.ownTaskQueue === true
      ? `${taskQueue}@${hostname()}-${process.pid}-${randomUUID().slice(0, 8)}`
      : options.ownTaskQueue || undefined;
  const taskLogs = options.logLocation ? new TaskLogs(options.logLocation) : undefined;
  await taskLogs?.checkWritable();
  const activities = {
    ...wrapTaskActivities(options.activities, taskLogs, ownQueue),
    ...createFrameworkActivities(),
    ...createAlertActivities(options.activities),
  };
  const common = {
    connection: options.connection,
    namespace: options.namespace ?? DEFAULT_NAMESPACE,
    maxConcurrentActivityTaskExecutions: options.maxConcurrentActivities ?? DEFAULT_MAX_CONCURRENT_ACTIVITIES,
    shutdownGraceTime: '10s',
  };
  const worker = await withNewContextStackTraceLimit(
    options.workflowStackTraceFrames ?? DEFAULT_WORKFLOW_STACK_TRACE_FRAMES,
    () =>
      Worker.create({
        ...common,
        taskQueue,
        ...(bundle ? { workflowBundle: bundle } : { workflowsPath: WORKFLOWS_PATH, bundlerOptions: BUNDLER_OPTIONS }),
        activities,
        ...options.workerOptions,
      }),
  );
  if (!ownQueue) return worker;
  const own = await Worker.create({ ...common, taskQueue: ownQueue, activities, ...options.workerOptions });
  return withCompanion(worker, own);
}

/**
 * Runs `create` with V8's stack trace limit for new contexts set to `frames`, then restores it. The SDK freezes the
 * workflow context's `Error` once it has loaded the bundle, so the limit can only be given when the context is
 * created, and V8 takes it then from this process-wide flag. Contexts that exist already (this one) keep theirs.
 */
async function withNewContextStackTraceLimit<T>(frames: number, create: () => Promise<T>): Promise<T> {
  if (!Number.isInteger(frames) || frames < 0) {
    throw new TempoflowError(`workflowStackTraceFrames must be a whole number of frames, not ${frames}`);
  }
  const own = Error.stackTraceLimit;
  setFlagsFromString(`--stack-trace-limit=${frames}`);
  try {
    return await create();
  } finally {
    // A context created later (a worker thread, a vm context) gets this context's limit again, or V8's 10.
    setFlagsFromString(`--stack-trace-limit=${Number.isInteger(own) && own >= 0 ? own : 10}`);
  }
}

/**
 * The returned worker runs `companion` (its own-queue activity worker) alongside: both start with `run()` (and
 * so `runUntil`), and the companion shuts down when the worker's run ends, however it ends.
 */
function withCompanion(worker: Worker, companion: Worker): Worker {
  const runMain = worker.run.bind(worker);
  worker.run = async () => {
    const companionRun = companion.run();
    try {
      await runMain();
    } finally {
      if (companion.getState() === 'RUNNING') companion.shutdown();
      await companionRun;
    }
  };
  return worker;
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
    let customAttributes: Record<string, number> | null | undefined;
    try {
      ({ customAttributes } = await connection.operatorService.listSearchAttributes({ namespace }));
    } catch (err) {
      // Some clusters do not let this caller list them; docs/production.md asks to add them beforehand there.
      if (isNotAllowed(err)) return;
      throw err;
    }
    const custom = customAttributes ?? {};
    // One registered with another type (by hand, or LogicalDate by earlier tempoflow workers, which added it as a
    // Bool) makes every start of a run fail: say which and how to mend it here, where it can be mended.
    const wrong = Object.entries(SEARCH_ATTRIBUTES).filter(
      ([name, type]) => name in custom && custom[name] !== INDEXED_VALUE_TYPE[type],
    );
    if (wrong.length) {
      const described = wrong.map(
        ([name, type]) =>
          `${name} is ${typeName(custom[name])} where tempoflow needs ${typeName(INDEXED_VALUE_TYPE[type])}`,
      );
      throw new TempoflowError(
        `namespace '${namespace}' has tempoflow's search attributes with other types (${described.join('; ')}), so no ` +
          `run can start there: remove ${wrong.length > 1 ? 'them' : 'it'} with ` +
          wrong.map(([name]) => `\`temporal operator search-attribute remove --name ${name}\``).join(' and ') +
          ' and start the worker again, which adds them with their types',
      );
    }
    const missing = Object.entries(SEARCH_ATTRIBUTES).filter(([name]) => !(name in custom));
    if (!missing.length) return;
    try {
      await connection.operatorService.addSearchAttributes({
        namespace,
        searchAttributes: Object.fromEntries(missing.map(([name, type]) => [name, INDEXED_VALUE_TYPE[type]])),
      });
    } catch (err) {
      if (!isNotAllowed(err)) throw err;
      const wanted = missing.map(([name, type]) => `${name} (${typeName(INDEXED_VALUE_TYPE[type])})`);
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
