/** What a schedule starts: the entry that runs (or finds) the DAG run of the scheduled logical date. */
import {
  ApplicationFailure,
  executeChild,
  ParentClosePolicy,
  proxyActivities,
  setCurrentDetails,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import {
  ChildWorkflowFailure,
  defineSearchAttributeKey,
  SearchAttributeType,
  WorkflowExecutionAlreadyStartedError,
  WorkflowIdReusePolicy,
} from '@temporalio/common';
import { isDagRunState } from '../core/run-states';
import { dagRunId, previousFireTime } from '../core/schedule';
import type { ScheduleTiming } from '../core/schedule';
import { DAG_ID, dagRunStateAttribute, LOGICAL_DATE } from '../core/search-attributes';
import type { DagRunInput, DagRunStatus } from '../core/types';
import type { FrameworkActivities } from '../worker/framework-activities';
import { DAG_RUN_WORKFLOW } from './definitions';

const { tempoflowFindRuns: findRuns } = proxyActivities<FrameworkActivities>({
  startToCloseTimeout: '1m',
  retry: { maximumAttempts: 10 },
});

const SCHEDULED_START_TIME = defineSearchAttributeKey('TemporalScheduledStartTime', SearchAttributeType.DATETIME);

/**
 * Runs under the schedule's own workflow id: the run itself, as a child with the DAG run id of its logical date,
 * so a scheduled run and a trigger or backfill of the same date are one run. The logical date is the scheduled
 * time, and the data interval runs from the previous scheduled time to it. When that run already exists
 * (triggered or backfilled first), this reports it instead of running the DAG again.
 */
export async function runScheduled(scheduled: DagRunInput, timing: ScheduleTiming): Promise<DagRunStatus> {
  const at = workflowInfo().typedSearchAttributes.get(SCHEDULED_START_TIME) ?? workflowInfo().startTime;
  const logicalDate = at.toISOString();
  const input: DagRunInput = {
    dag: scheduled.dag,
    params: scheduled.params,
    logicalDate,
    dataInterval: { start: previousFireTime(timing, at).toISOString(), end: logicalDate },
  };
  const runId = dagRunId(input.dag.id, logicalDate);
  upsertSearchAttributes([{ key: LOGICAL_DATE, value: at }]);
  setCurrentDetails(`Runs the DAG as workflow \`${runId}\``);
  try {
    return await executeChild<(input: DagRunInput) => Promise<DagRunStatus>>(DAG_RUN_WORKFLOW, {
      workflowId: runId,
      args: [input],
      workflowIdReusePolicy: WorkflowIdReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY,
      parentClosePolicy: ParentClosePolicy.REQUEST_CANCEL,
      staticSummary: `${input.dag.id} · logical date ${logicalDate} (scheduled)`,
      staticDetails: `data interval ${input.dataInterval!.start} to ${logicalDate}`,
      typedSearchAttributes: [
        { key: DAG_ID, value: input.dag.id },
        { key: LOGICAL_DATE, value: at },
        dagRunStateAttribute('queued'),
      ],
    });
  } catch (err) {
    if (err instanceof WorkflowExecutionAlreadyStartedError) {
      const found = await findRuns({ runIds: [runId] });
      const state = found[runId] ?? 'running';
      setCurrentDetails(`The run of this logical date already exists: ${runId} (${state})`);
      return {
        dagId: input.dag.id,
        runId,
        // Terminated or timed out: it failed (and could not be here, as a failed run may start again).
        state: isDagRunState(state) ? state : 'failed',
        logicalDate,
        dataInterval: input.dataInterval,
        params: input.params,
        startedAt: workflowInfo().startTime.toISOString(),
        tasks: [],
        outputs: {},
        existing: true,
      };
    }
    // The run's own failure (its message names the failed tasks), not the child-workflow wrapper around it.
    if (err instanceof ChildWorkflowFailure && err.cause instanceof ApplicationFailure) throw err.cause;
    throw err;
  }
}
