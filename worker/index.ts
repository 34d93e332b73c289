/** The public worker API. */
export { createTempoflowWorker, ensureSearchAttributes, WORKFLOWS_PATH, PREBUILT_BUNDLE_PATH } from './create-worker';
export type { TempoflowWorkerOptions } from './create-worker';
export { runWorker, startWorker, installRuntime, describeWorker } from './main';
export type { StartWorkerOptions, StartedWorker } from './main';
export {
  resolveWorkerSettings,
  activityDepsFrom,
  DEFAULT_ADDRESS,
  DEFAULT_NAMESPACE,
  DEFAULT_TASK_QUEUE,
  DEFAULT_MAX_CONCURRENT_ACTIVITIES,
  DEFAULT_DUCKDB_MEMORY_LIMIT,
  DEFAULT_DUCKDB_INSTANCES,
} from './settings';
export type { WorkerSettings, WorkerSettingsOverrides, DuckDbSettings } from './settings';
export { withDuckDb, withScratch, defaultDuckDbThreads } from './duckdb';
export type { DuckDbOptions } from './duckdb';
export {
  findProjectFile,
  loadProject,
  projectWorkerParts,
  resolveProjectFile,
  PROJECT_FILE_NAMES,
} from './load-project';
