import {
  ApplicationFailure,
  executeChild,
  isCancellation,
  ParentClosePolicy,
  proxyActivities,
  setHandler,
  WorkflowIdReusePolicy,
} from '@temporalio/workflow';
import { DAG_ID, DAG_RUN_STATE, LOGICAL_DATE } from '../core/search-attributes';
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
}

export type BackfillRunState = DagRunState | 'pending' | 'skipped';

export interface BackfillStatus {
  dagId: string;
  state: 'running' | 'completed' | 'cancelled';
  maxActive: number;
  reprocess: Reprocess;
  runs: { runId: string; logicalDate: string; dataInterval: DataInterval; state: BackfillRunState; note?: string }[];
  /** Most runs that were running at the same time (never above `maxActive`). */
  peakActive: number;
}

const { tempoflowFindRuns } = proxyActivities<FrameworkActivities>({
  startToCloseTimeout: '2m',
  retry: { maximumAttempts: 5 },
});

/** A durable backfill: one run per interval, at most `maxActive` at once, surviving the CLI's exit. */
export async function backfill(input: BackfillInput): Promise<BackfillStatus> {
  const { dag } = input;
  const status: BackfillStatus = {
    dagId: dag.id,
    state: 'running',
    maxActive: input.maxActive,
    reprocess: input.reprocess,
    runs: input.intervals.map((interval) => ({
      runId: `${dag.id}__${interval.end}`,
      logicalDate: interval.end,
      dataInterval: interval,
      state: 'pending',
    })),
    peakActive: 0,
  };
  setHandler(backfillStatusQuery, () => status);

  const existing = await tempoflowFindRuns({ runIds: status.runs.map((r) => r.runId) });
  for (const run of status.runs) {
    const found = existing[run.runId];
    if (!found) continue;
    if (found === 'running') {
      run.state = 'skipped';
      run.note = 'a run for this logical date is already running';
    } else if (input.reprocess === 'none' || (input.reprocess === 'failed' && found === 'success')) {
      run.state = 'skipped';
      run.note = `already ${found}`;
    }
  }

  let active = 0;
  let next = 0;
  const todo = status.runs.filter((r) => r.state === 'pending');
  const lane = async () => {
    while (next < todo.length) {
      const run = todo[next++]!;
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
            { key: DAG_RUN_STATE, value: 'queued' },
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
