/** The one place that tells a run's state from its workflow execution (pure: the runner workflows use it too). */
import { DAG_RUN_STATES, FINISHED_DAG_RUN_STATES } from './types';
import type { DagRunState, RunState } from './types';

export function isDagRunState(value: unknown): value is DagRunState {
  return (DAG_RUN_STATES as readonly unknown[]).includes(value);
}

export function isFinishedDagRunState(value: unknown): value is DagRunState {
  return (FINISHED_DAG_RUN_STATES as readonly unknown[]).includes(value);
}

/**
 * A run's state from its execution's status (Temporal's name, e.g. `'RUNNING'`) and the `DagRunState` it recorded.
 * A closed execution without a finished state ended outside its runner's control (terminated, timed out), or
 * before its runner began.
 */
export function runStateOf(executionStatus: string, recorded: unknown): RunState {
  if (executionStatus === 'RUNNING') return recorded === 'queued' ? 'queued' : 'running';
  if (isFinishedDagRunState(recorded)) return recorded;
  switch (executionStatus) {
    case 'TERMINATED':
      return 'terminated';
    case 'TIMED_OUT':
      return 'timed_out';
    case 'CANCELLED':
      return 'cancelled';
    // The runner fails a failed run and completes only a successful one (what a schedule's entry returns, too).
    case 'COMPLETED':
      return 'success';
    default:
      return 'failed';
  }
}

/** True while a run may still change: started (queued) or running. */
export function isRunInFlight(state: RunState): boolean {
  return state === 'queued' || state === 'running';
}
