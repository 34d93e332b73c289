/** Names shared by the runner workflows and their clients (safe to import from both sides). */
import { defineQuery } from '@temporalio/workflow';
import type { DagRunStatus } from '../core/types';
import type { BackfillStatus } from './backfill';

export const DAG_RUN_WORKFLOW = 'dagRun';
export const MAP_BATCH_WORKFLOW = 'dagRunMapBatch';
export const BACKFILL_WORKFLOW = 'backfill';

/** Live task states of a run. */
export const statusQuery = defineQuery<DagRunStatus>('status');

/** Progress of a backfill. */
export const backfillStatusQuery = defineQuery<BackfillStatus>('backfillStatus');

export { MAX_OUTPUT_BYTES } from '../core/task-output';

/** Mapped tasks with more items than this run in child workflows of `MAP_BATCH_SIZE` items each, so that no
 * single history grows past Temporal's limits (about 6 events per instance). */
export const MAP_INLINE_LIMIT = 200;
export const MAP_BATCH_SIZE = 500;

/** Error type of a failed run (the `ApplicationFailure` the runner throws). Its first detail is the run status. */
export const DAG_RUN_FAILED = 'DagRunFailed';
