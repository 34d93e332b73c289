/** Workflow code: deterministic, bundled for the worker. It imports activity types only. */
export { dagRun } from './dag-run';
export { dagRunMapBatch } from './map-batch';
export { backfill } from './backfill';
export { resourceLock } from './resource-lock';
export { resourcePool } from './resource-pool';
