import {
  ApplicationFailure,
  continueAsNew,
  executeChild,
  isCancellation,
  ParentClosePolicy,
  proxyActivities,
  setHandler,
  workflowInfo,
  WorkflowIdReusePolicy,
} from '@temporalio/workflow';
import { isRunInFlight } from '../core/run-states';
import { DAG_ID, dagRunStateAttribute, LOGICAL_DATE } from '../core/search-attributes';
import type { DagRunInput, DagRunState, DagSnapshot, DataInterval, Json } from '../core/types';
import type { FrameworkActivities } from '../worker/framework-activities';
import { backfillStatusQuery, DAG_RUN_FAILED, DAG_RUN_WORKFLOW } from './definitions';
import type { dagRun } from './dag-run';

/** Which intervals that already have a run are run again (Airflow's reprocess behaviour). */
export type Reprocess = 'none' | 'failed' | 'completed';

export interface BackfillInput {
  dag: DagSnapshot;
  params: Record<string, Json>;
  intervals: DataInterval[];
  maxActive: number;
  reprocess: Reprocess;
  taskQueue: string;
  /**
   * Runs one execution starts before it continues as new, so no history nears Temporal's limits (10,240 events
   * warns, 51,200 terminates); default `RUNS_PER_EXECUTION`. Tests lower it to see several executions.
   */
  runsPerExecution?: number;
  /** Set only by continue-as-new: where the executions before this one left off. */
  carried?: BackfillProgress;
}

/** What one execution hands the next: the state of every interval's run, so the cursor is "the pending ones". */
export interface BackfillProgress {
  /** State of each interval's run, in `intervals` order (never `running`: an execution ends with none in flight). */
  states: BackfillRunState[];
  /** Notes by interval index (why a run was skipped or failed). */
  notes: Record<number, string>;
  peakActive: number;
  /** Executions before this one. */
  executions: number;
}

/**
 * A run costs its backfill 3 events (child initiated, started, closed) plus its share of the workflow tasks that
 * wake the backfill: at most 2 of 3 events each, so 9 at worst; measured 5 to 6 (test/backfill-history.test.ts).
 * An execution of 500 runs thus has about 3,000 events and never more than about 4,500, below the 10,240 at
 * which Temporal warns. (The server's own continue-as-new suggestion may end an execution earlier.)
 */
export const RUNS_PER_EXECUTION = 500;

/** Longest note carried over continue-as-new (a failed run's message can be long; the run itself has it all). */
const MAX_NOTE_CHARS = 1000;

export type BackfillRunState = DagRunState | 'pending' | 'skipped';

export interface BackfillStatus {
  dagId: string;
  state: 'running' | 'completed' | 'cancelled';
  maxActive: number;
  reprocess: Reprocess;
  runs: { runId: string; logicalDate: string; dataInterval: DataInterval; state: BackfillRunState; note?: string }[];
  /** Most runs that were running at the same time (never above `maxActive`). */
  peakActive: number;
  /** Which execution of the backfill this is (it continues as new every `runsPerExecution` runs), from 1. */
  execution: number;
}

const { tempoflowFindRuns } = proxyActivities<FrameworkActivities>({
  startToCloseTimeout: '2m',
  retry: { maximumAttempts: 5 },
});

/**
 * A durable backfill: one run per interval, at most `maxActive` at once, surviving the CLI's exit. Every
 * `runsPerExecution` runs it lets the runs in flight finish and continues as new with its progress, so a backfill
 * of any length keeps each history small; the status query answers from whichever execution is current.
 */
export async function backfill(input: BackfillInput): Promise<BackfillStatus> {
  const { dag, carried } = input;
  const status: BackfillStatus = {
    dagId: dag.id,
    state: 'running',
    maxActive: input.maxActive,
    reprocess: input.reprocess,
    runs: input.intervals.map((interval, i) => {
      const note = carried?.notes[i];
      return {
        runId: `${dag.id}__${interval.end}`,
        logicalDate: interval.end,
        dataInterval: interval,
        state: carried?.states[i] ?? 'pending',
        ...(note !== undefined ? { note } : {}),
      };
    }),
    peakActive: carried?.peakActive ?? 0,
    execution: (carried?.executions ?? 0) + 1,
  };
  setHandler(backfillStatusQuery, () => status);

  // Only the first execution looks for existing runs; later ones would find the runs this backfill started.
  if (!carried && status.runs.length > 0) {
    const existing = await tempoflowFindRuns({ dagId: dag.id, runIds: status.runs.map((r) => r.runId) });
    for (const run of status.runs) {
      const found = existing[run.runId];
      if (!found) continue;
      if (isRunInFlight(found)) {
        run.state = 'skipped';
        run.note = 'a run for this logical date is already running';
      } else if (input.reprocess === 'none' || (input.reprocess === 'failed' && found === 'success')) {
        run.state = 'skipped';
        run.note = `already ${found}`;
      }
    }
  }

  const budget = Math.max(1, input.runsPerExecution ?? RUNS_PER_EXECUTION);
  let active = 0;
  let next = 0;
  let started = 0;
  const todo = status.runs.filter((r) => r.state === 'pending');
  // Start another run while this execution has budget left (and the server has not asked to continue as new).
  const mayStart = () =>
    next < todo.length && (started === 0 || (started < budget && !workflowInfo().continueAsNewSuggested));
  const lane = async () => {
    while (mayStart()) {
      const run = todo[next++]!;
      started++;
      active++;
      status.peakActive = Math.max(status.peakActive, active);
      run.state = 'running';
      try {
        const input_: DagRunInput = {
          dag,
          params: input.params,
          logicalDate: run.logicalDate,
          dataInterval: run.dataInterval,
        };
        const result = await executeChild<typeof dagRun>(DAG_RUN_WORKFLOW, {
          workflowId: run.runId,
          taskQueue: input.taskQueue,
          args: [input_],
          workflowIdReusePolicy: WorkflowIdReusePolicy.ALLOW_DUPLICATE,
          parentClosePolicy: ParentClosePolicy.REQUEST_CANCEL,
          staticSummary: `${dag.id} · logical date ${run.logicalDate} (backfill)`,
          typedSearchAttributes: [
            { key: DAG_ID, value: dag.id },
            { key: LOGICAL_DATE, value: new Date(run.logicalDate) },
            dagRunStateAttribute('queued'),
          ],
        });
        run.state = result.state;
      } catch (err) {
        if (isCancellation(err)) throw err;
        run.state = 'failed';
        run.note = runFailureMessage(err);
      } finally {
        active--;
      }
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.min(input.maxActive, todo.length) }, lane));
  } catch (err) {
    if (isCancellation(err)) {
      status.state = 'cancelled';
      for (const run of status.runs) if (run.state === 'pending' || run.state === 'running') run.state = 'cancelled';
    }
    throw err;
  }
  if (next < todo.length) {
    // Every lane has finished its run (children close with their parent execution, so none may be in flight).
    const notes: Record<number, string> = {};
    status.runs.forEach((r, i) => {
      if (r.note !== undefined) notes[i] = r.note.slice(0, MAX_NOTE_CHARS);
    });
    return continueAsNew<typeof backfill>({
      ...input,
      carried: {
        states: status.runs.map((r) => r.state),
        notes,
        peakActive: status.peakActive,
        executions: status.execution,
      },
    });
  }
  status.state = 'completed';
  return status;
}

/** The run's own failure message ("DAG 'x' run failed: task 'y' failed: ...") under the child failure. */
function runFailureMessage(err: unknown): string {
  let current: unknown = err;
  while (current instanceof Error) {
    if (current instanceof ApplicationFailure && current.type === DAG_RUN_FAILED) return current.message;
    current = (current as { cause?: unknown }).cause;
  }
  return err instanceof Error ? err.message : String(err);
}
