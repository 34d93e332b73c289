/** The public client API: start, follow, find and operate DAG runs. */
export { dagRunId, getRunInput, getRunStatus, listRuns, retryRun, triggerDagRun, waitForRun } from './runs';
export type { RunListing, TriggerOptions, TriggeredRun } from './runs';
export { getBackfillStatus, listBackfills, planBackfill, startBackfill } from './backfill';
export type { BackfillOptions, PlannedRun } from './backfill';
export {
  createSchedule,
  deleteSchedule,
  describeSchedule,
  listSchedules,
  pauseSchedule,
  triggerSchedule,
  unpauseSchedule,
} from './schedules';
export type { CreateScheduleOptions, ScheduleDetails } from './schedules';
export { deletePool, getPool, listPools, PoolError, setPool } from './pools';
export type { PoolStatus } from './pools';
export { main as runCli, buildProgram, type CommandModule } from './cli';
export { CliContext, CliExit, UsageError } from './context';
