import os from 'node:os';
import path from 'node:path';
import { z } from 'zod';
import { TempoflowError } from '../core/errors';
import type { ProjectActivityDeps, ProjectWorkerDefaults } from '../core/project';
import {
  DEFAULT_DUCKDB_INSTANCES,
  DEFAULT_DUCKDB_MEMORY_LIMIT,
  type DuckDbOptions,
  defaultDuckDbThreads,
} from './duckdb';
import { resolveLogLocation } from './log-location';
import { resolveTemporalConfig } from './temporal-config';
import type { TemporalConnectionConfig } from './temporal-config';

/** Everything a tempoflow worker needs to know, from command-line flags and environment variables. */
export interface WorkerSettings {
  /** Temporal frontend, `host:port` (the same as `temporal.address`). */
  address: string;
  namespace: string;
  /** How to connect: TLS, API key and gRPC metadata from Temporal's environment configuration (secrets hidden). */
  temporal: TemporalConnectionConfig;
  taskQueue: string;
  /** Task instances this worker runs at once. */
  maxConcurrentActivities: number;
  /** Settings of the DuckDB engine that task activities open (names match `ActivityDeps['duckdb']`). */
  duckdb: DuckDbSettings;
  /** Where task logs are kept (`--log-location`, `TEMPOFLOW_LOG_LOCATION`); none when unset. */
  logLocation?: string;
  /** Frames kept in stack traces inside workflow code (`createTempoflowWorker`'s `workflowStackTraceFrames`). */
  workflowStackTraceFrames: number;
}

/**
 * The worker's resolved DuckDB settings (`DuckDbOptions` with every limit set). `instances` with `memoryLimit`
 * bounds the worker's DuckDB memory at `instances x memoryLimit`, kept by `withDuckDb`.
 */
export type DuckDbSettings = Required<Pick<DuckDbOptions, 'memoryLimit' | 'threads' | 'tempDirectory' | 'instances'>>;

/** Flags that override the environment (the CLI's global options and `tempoflow worker` options). */
export interface WorkerSettingsOverrides {
  address?: string;
  namespace?: string;
  taskQueue?: string;
  maxConcurrentActivities?: string | number;
  duckdbMemoryLimit?: string;
  duckdbThreads?: string | number;
  duckdbTempDir?: string;
  duckdbInstances?: string | number;
  logLocation?: string;
  workflowStackTraceFrames?: string | number;
}

// Every default of a worker lives here; create-worker.ts, the CLI and its help text import them.
export const DEFAULT_ADDRESS = '127.0.0.1:7233';
export const DEFAULT_NAMESPACE = 'default';
export const DEFAULT_TASK_QUEUE = 'tempoflow';
/*
 * Sized for the reference worker, 2 cores and 24 GiB, where each task activity may open a DuckDB (worker/duckdb.ts
 * sizes those): 4 task instances at once (not 8): most tasks wait on storage, so more than the cores pays, but
 * every one may want a DuckDB of DEFAULT_DUCKDB_MEMORY_LIMIT, and at most DEFAULT_DUCKDB_INSTANCES are open.
 */
export const DEFAULT_MAX_CONCURRENT_ACTIVITIES = 4;
/*
 * No frames: the SDK captures and source-maps a stack trace for every promise workflow code creates, for the Web
 * UI's "Stack Trace" query, and that was the largest cost of a worker's workflow thread (bench --framework). The
 * workflow code is tempoflow's runner, never a DAG's, so its stacks tell a DAG's author nothing; the run's details
 * and pending activities say what it waits for. Raise it to debug the runner itself.
 */
export const DEFAULT_WORKFLOW_STACK_TRACE_FRAMES = 0;
export { DEFAULT_DUCKDB_INSTANCES, DEFAULT_DUCKDB_MEMORY_LIMIT, defaultDuckDbThreads };
export const defaultDuckDbTempDir = (): string => path.join(os.tmpdir(), 'tempoflow-duckdb');

/** Settings resolved here; the address and namespace come with the Temporal connection (temporal-config.ts). */
type OwnSetting = Exclude<keyof WorkerSettingsOverrides, 'address' | 'namespace' | 'logLocation'>;

/** Where each setting comes from: its flag and its environment variable (named in error messages). */
const SOURCES = {
  taskQueue: { flag: '--task-queue', env: 'TEMPOFLOW_TASK_QUEUE' },
  maxConcurrentActivities: { flag: '--max-concurrent-activities', env: 'TEMPOFLOW_MAX_CONCURRENT_ACTIVITIES' },
  duckdbMemoryLimit: { flag: '--duckdb-memory-limit', env: 'TEMPOFLOW_DUCKDB_MEMORY_LIMIT' },
  duckdbThreads: { flag: '--duckdb-threads', env: 'TEMPOFLOW_DUCKDB_THREADS' },
  duckdbTempDir: { flag: '--duckdb-temp-dir', env: 'TEMPOFLOW_DUCKDB_TEMP_DIR' },
  duckdbInstances: { flag: '--duckdb-instances', env: 'TEMPOFLOW_DUCKDB_INSTANCES' },
  workflowStackTraceFrames: {
    flag: '--workflow-stack-trace-frames',
    env: 'TEMPOFLOW_WORKFLOW_STACK_TRACE_FRAMES',
  },
} as const satisfies Record<OwnSetting, { flag: string; env: string }>;

const wholeNumber = (min: number, max: number) =>
  z.coerce
    .number({ error: 'must be a whole number' })
    .refine(Number.isInteger, 'must be a whole number')
    .min(min, `must be at least ${min}`)
    .max(max, `must be at most ${max}`);
const positiveInt = (max: number) => wholeNumber(1, max);

const FIELDS = {
  taskQueue: z.string().trim().min(1, 'must not be empty'),
  maxConcurrentActivities: positiveInt(10_000),
  duckdbMemoryLimit: z
    .string()
    .trim()
    .regex(/^\d+(\.\d+)?\s*(B|KB|KiB|MB|MiB|GB|GiB|TB|TiB)$/i, "must be a size such as '512MB' or '2GB'"),
  duckdbThreads: positiveInt(1024),
  duckdbTempDir: z.string().trim().min(1, 'must not be empty'),
  duckdbInstances: positiveInt(1024),
  workflowStackTraceFrames: wholeNumber(0, 100),
} satisfies Record<OwnSetting, z.ZodType>;

function defaults(): Record<OwnSetting, string | number> {
  return {
    taskQueue: DEFAULT_TASK_QUEUE,
    maxConcurrentActivities: DEFAULT_MAX_CONCURRENT_ACTIVITIES,
    duckdbMemoryLimit: DEFAULT_DUCKDB_MEMORY_LIMIT,
    duckdbThreads: defaultDuckDbThreads(),
    duckdbTempDir: defaultDuckDbTempDir(),
    duckdbInstances: DEFAULT_DUCKDB_INSTANCES,
    workflowStackTraceFrames: DEFAULT_WORKFLOW_STACK_TRACE_FRAMES,
  };
}

/**
 * Resolves worker settings: a flag wins over its environment variable, which wins over the default. The
 * Temporal connection follows Temporal's environment configuration (`resolveTemporalConfig`: variables and
 * profile file), unless `options.temporal` gives it (the local servers tempoflow starts: no TLS, no credentials).
 *
 * @throws TempoflowError naming the flag, environment variable or file that holds a bad value.
 */
export function resolveWorkerSettings(
  overrides: WorkerSettingsOverrides = {},
  env: NodeJS.ProcessEnv = process.env,
  options: { temporal?: TemporalConnectionConfig; project?: ProjectWorkerDefaults } = {},
): WorkerSettings {
  // A project's `worker` settings (tempoflow.config.ts) stand in for the defaults.
  const fromProject = Object.entries(options.project ?? {}).filter(([, v]) => v !== undefined);
  const fallback = { ...defaults(), ...Object.fromEntries(fromProject) } as Record<OwnSetting, string | number>;
  const problems: string[] = [];
  let temporal = options.temporal;
  try {
    const { address, namespace } = overrides;
    temporal ??= resolveTemporalConfig(
      { ...(address !== undefined ? { address } : {}), ...(namespace !== undefined ? { namespace } : {}) },
      env,
    );
  } catch (err) {
    if (!(err instanceof TempoflowError)) throw err;
    problems.push(err.message);
  }
  const values = {} as Record<OwnSetting, unknown>;
  for (const key of Object.keys(FIELDS) as OwnSetting[]) {
    const { flag, env: envName } = SOURCES[key];
    const fromFlag = overrides[key];
    const fromEnv = env[envName];
    const [raw, source] =
      fromFlag !== undefined
        ? [fromFlag, flag]
        : fromEnv !== undefined && fromEnv !== ''
          ? [fromEnv, `${envName}`]
          : [fallback[key], options.project?.[key] !== undefined ? `the project's worker.${key}` : 'default'];
    const parsed = FIELDS[key].safeParse(raw);
    if (parsed.success) values[key] = parsed.data;
    else problems.push(`${source} ${JSON.stringify(String(raw))}: ${parsed.error.issues[0]?.message ?? 'invalid'}`);
  }
  let logLocation: string | undefined;
  try {
    logLocation = resolveLogLocation(overrides.logLocation, env, options.project?.logLocation);
  } catch (err) {
    if (!(err instanceof TempoflowError)) throw err;
    problems.push(err.message);
  }
  if (problems.length || !temporal) throw new TempoflowError(`invalid worker settings: ${problems.join('; ')}`);
  return {
    address: temporal.address,
    namespace: temporal.namespace,
    temporal,
    taskQueue: values.taskQueue as string,
    maxConcurrentActivities: values.maxConcurrentActivities as number,
    duckdb: {
      memoryLimit: values.duckdbMemoryLimit as string,
      threads: values.duckdbThreads as number,
      tempDirectory: values.duckdbTempDir as string,
      instances: values.duckdbInstances as number,
    },
    ...(logLocation ? { logLocation } : {}),
    workflowStackTraceFrames: values.workflowStackTraceFrames as number,
  };
}

/** What a project's `activities` factory receives from the worker's settings. */
export function activityDepsFrom(settings: WorkerSettings): ProjectActivityDeps {
  return { duckdb: settings.duckdb };
}
