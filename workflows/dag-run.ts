import {
  ApplicationFailure,
  CancellationScope,
  condition,
  getExternalWorkflowHandle,
  proxyActivities,
  uuid4,
  executeChild,
  isCancellation,
  ParentClosePolicy,
  patched,
  setCurrentDetails,
  setHandler,
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
import { canonicalLocationSyntax } from '../core/locations';
import { dagRunId, previousFireTime } from '../core/schedule';
import type { ScheduleTiming } from '../core/schedule';
import { isDagRunState } from '../core/run-states';
import { DAG_ID, dagRunStateAttribute, LOGICAL_DATE } from '../core/search-attributes';
import { decideTrigger } from '../core/trigger-rules';
import { FINISHED_TASK_STATES } from '../core/types';
import type {
  DagRunInput,
  DagRunStatus,
  Json,
  TaskContext,
  TaskError,
  TaskSnapshot,
  TaskState,
  TaskStatus,
} from '../core/types';
import {
  DAG_RUN_FAILED,
  MAP_BATCH_SIZE,
  MAP_BATCH_WORKFLOW,
  MAP_INLINE_LIMIT,
  MAX_OUTPUT_BYTES,
  statusQuery,
} from './definitions';
import type { MapBatchInput, MapBatchResult } from './map-batch';
import { runMappedInline, Slots, summarizeInstances } from './map-batch';
import { lockGrantedSignal, lockWorkflowId, releaseLockSignal } from './resource-lock';
import { describeError, runTaskInstance, TaskInstanceFailed } from './task-instance';
import type { FrameworkActivities } from '../worker/framework-activities';

const { tempoflowRequestLock: requestLock, tempoflowFindRuns: findRuns } = proxyActivities<FrameworkActivities>({
  startToCloseTimeout: '1m',
  retry: { maximumAttempts: 10 },
});

/**
 * The generic runner: executes one run of any DAG. It starts every task whose trigger rule is met (within the
 * DAG's cap on running instances), hands each its upstream outputs, and records task states for the `status`
 * query. The DAG arrives whole in the input, so the history records exactly what ran.
 */
export async function dagRun(runInput: DagRunInput): Promise<DagRunStatus> {
  if (runInput.fromSchedule) return runScheduled(runInput, runInput.fromSchedule);
  const input = runInput;
  const { dag } = input;
  const runId = workflowInfo().workflowId;
  const status: DagRunStatus = {
    dagId: dag.id,
    runId,
    state: 'running',
    logicalDate: input.logicalDate,
    dataInterval: input.dataInterval,
    params: input.params,
    startedAt: new Date().toISOString(),
    tasks: dag.tasks.map((t) => ({ taskId: t.id, activity: t.activity, state: 'waiting', attempts: 0 })),
    outputs: {},
  };
  const taskStatus = new Map(status.tasks.map((t) => [t.taskId, t]));
  const snapshot = new Map(dag.tasks.map((t) => [t.id, t]));
  const slots = new Slots(dag.maxActiveTasks);
  let changed = true;
  const onChange = () => {
    changed = true;
  };
  setHandler(statusQuery, () => status);
  const granted = new Set<string>();
  setHandler(lockGrantedSignal, ({ requestId }) => void granted.add(requestId));

  /** Runs `fn` holding the lock of `resource`; waiting for it, the task stays `scheduled`. */
  const withLock = async <T>(resource: string, task: TaskSnapshot, fn: () => Promise<T>): Promise<T> => {
    const lockId = lockWorkflowId(resource);
    const requestId = `${runId}/${task.id}/${uuid4()}`;
    const { retry } = task;
    const leaseMs = task.executionTimeoutMs * retry.maxAttempts + retry.maxDelayMs * retry.maxAttempts + 60_000;
    await requestLock({
      lockId,
      request: { requesterId: runId, requestId, leaseMs },
      taskQueue: workflowInfo().taskQueue,
    });
    try {
      await condition(() => granted.has(requestId));
      return await fn();
    } finally {
      await CancellationScope.nonCancellable(() =>
        getExternalWorkflowHandle(lockId).signal(releaseLockSignal, { requestId }),
      );
    }
  };
  upsertSearchAttributes([dagRunStateAttribute('running')]);

  for (const [taskId, output] of Object.entries(input.reuse ?? {})) {
    const st = taskStatus.get(taskId);
    if (!st) continue;
    st.state = 'success';
    status.outputs[taskId] = output;
  }

  /** A branch task that did not choose `downstreamId` counts as skipped for it (Airflow's branching). */
  const effectiveState = (upstreamId: string, downstreamId: string): TaskState => {
    const state = taskStatus.get(upstreamId)!.state;
    if (state !== 'success' || !snapshot.get(upstreamId)!.branch) return state;
    const chosen = status.outputs[upstreamId];
    const follow = Array.isArray(chosen) ? chosen : [chosen];
    return follow.includes(downstreamId) ? 'success' : 'skipped';
  };

  const baseContext = (task: TaskSnapshot): Omit<TaskContext, 'attempt'> => {
    const upstream: Record<string, Json> = {};
    for (const up of task.upstream) {
      // A mapped task's instances get their item instead of the whole list they are mapped over.
      if (up === task.map?.over) continue;
      if (up in status.outputs) upstream[up] = status.outputs[up]!;
    }
    return {
      dagId: dag.id,
      runId,
      taskId: task.id,
      params: input.params,
      logicalDate: input.logicalDate,
      dataInterval: input.dataInterval,
      upstream,
    };
  };

  const failTask = (st: TaskStatus, error: TaskError) => {
    st.state = 'failed';
    st.error = error;
    st.endedAt = new Date().toISOString();
  };

  const execute = async (task: TaskSnapshot, st: TaskStatus): Promise<void> => {
    const ctx = baseContext(task);
    let output: Json;
    if (!task.map) {
      const run = async () => {
        await slots.acquire(1);
        try {
          return await runTaskInstance(task, ctx, st, onChange);
        } finally {
          slots.release(1);
        }
      };
      // Every spelling of one location is one lock (`s3a://b/lake/` = `s3://b/lake`; relative and symlinked local
      // spellings meet at the lake's own lease). Runs started before this keep the key they locked with.
      const lockKey = (value: Json | undefined) =>
        typeof value !== 'string'
          ? JSON.stringify(value)
          : patched('canonical-lock-key')
            ? canonicalLocationSyntax(value)
            : value;
      output = task.exclusiveBy ? await withLock(lockKey(input.params[task.exclusiveBy]), task, run) : await run();
      if (task.branch) {
        const downstream = dag.tasks.filter((t) => t.upstream.includes(task.id)).map((t) => t.id);
        const chosen = Array.isArray(output) ? output : [output];
        const unknown = chosen.filter((id) => typeof id !== 'string' || !downstream.includes(id));
        if (unknown.length) {
          failTask(st, {
            message: `branch task '${task.id}' chose ${JSON.stringify(unknown)}, which are not its downstream tasks (${downstream.join(', ')})`,
            type: 'InvalidBranch',
          });
          return;
        }
      }
    } else {
      const items = mapItems(task, status.outputs[task.map.over]);
      if (typeof items === 'string') return failTask(st, { message: items, type: 'InvalidMapInput' });
      if (items.length === 0) {
        st.state = 'skipped';
        st.endedAt = new Date().toISOString();
        st.mapped = { total: 0, states: {}, errors: [] };
        return;
      }
      st.state = 'running';
      st.startedAt = new Date().toISOString();
      st.mapped = { total: items.length, states: { waiting: items.length }, errors: [] };
      onChange();
      const result =
        items.length <= MAP_INLINE_LIMIT
          ? await runMappedInline(task, ctx, items, 0, slots, (instances) => {
              summarizeInstances(st, instances);
              onChange();
            })
          : await runMappedInBatches(task, ctx, items, st, slots, runId, onChange);
      st.endedAt = new Date().toISOString();
      st.attempts = result.maxAttempts;
      st.mapped = { total: items.length, states: result.states, errors: result.errors };
      if (result.errors.length) {
        const first = result.errors[0]!;
        return failTask(st, {
          message: `${result.errors.length} of ${items.length} instances failed; first: [${first.mapIndex}] ${first.error.message}`,
          type: first.error.type ?? 'MappedInstanceFailed',
        });
      }
      output = result.outputs;
    }
    const size = JSON.stringify(output).length;
    if (size > MAX_OUTPUT_BYTES) {
      return failTask(st, {
        message: `task '${task.id}' returned ${Math.round(size / 1024)} KiB of output, over the ${MAX_OUTPUT_BYTES / 1024} KiB limit: write the data to object storage and return its URI`,
        type: 'TaskOutputTooLarge',
      });
    }
    st.state = 'success';
    if (output !== null) status.outputs[task.id] = output;
  };

  /** Executions still settling (e.g. releasing a lock) after their task's state is final. */
  const inFlight = new Set<Promise<void>>();
  const start = (task: TaskSnapshot, st: TaskStatus) => {
    st.state = 'scheduled';
    const execution = execute(task, st)
      .catch((err: unknown) => {
        if (isCancellation(err)) return; // recorded when the run's own cancellation is handled
        if (err instanceof TaskInstanceFailed) return; // already recorded in st by runTaskInstance
        failTask(st, describeError(err));
      })
      .finally(() => {
        inFlight.delete(execution);
        onChange();
      });
    inFlight.add(execution);
  };

  /** Starts, skips or fails waiting tasks until nothing more can be decided now. */
  const advance = () => {
    for (let progressed = true; progressed;) {
      progressed = false;
      for (const task of dag.tasks) {
        const st = taskStatus.get(task.id)!;
        if (st.state !== 'waiting') continue;
        const decision = decideTrigger(
          task.triggerRule,
          task.upstream.map((up) => effectiveState(up, task.id)),
        );
        if (decision === 'wait') continue;
        progressed = true;
        if (decision === 'run') start(task, st);
        else {
          st.state = decision === 'skip' ? 'skipped' : 'upstream_failed';
          st.endedAt = new Date().toISOString();
        }
      }
    }
  };

  const finished = () => status.tasks.every((t) => FINISHED_TASK_STATES.includes(t.state));

  try {
    while (!finished()) {
      advance();
      setCurrentDetails(detailsMarkdown(status));
      if (finished()) break;
      changed = false;
      await condition(() => changed);
    }
    await Promise.all(inFlight);
  } catch (err) {
    if (!isCancellation(err)) throw err;
    for (const st of status.tasks) {
      if (st.state === 'waiting') st.state = 'skipped';
      else if (['scheduled', 'running', 'up_for_retry'].includes(st.state)) {
        failTask(st, { message: 'the run was cancelled', type: 'Cancelled' });
      }
    }
    status.state = 'cancelled';
    status.endedAt = new Date().toISOString();
    upsertSearchAttributes([dagRunStateAttribute('cancelled')]);
    setCurrentDetails(detailsMarkdown(status));
    throw err;
  }

  const failed = status.tasks.filter((t) => t.state === 'failed');
  status.state = failed.length || status.tasks.some((t) => t.state === 'upstream_failed') ? 'failed' : 'success';
  status.endedAt = new Date().toISOString();
  upsertSearchAttributes([dagRunStateAttribute(status.state)]);
  setCurrentDetails(detailsMarkdown(status));
  if (status.state === 'failed') {
    const reasons = failed.map((t) => `task '${t.taskId}' failed: ${t.error?.message ?? 'unknown error'}`);
    throw ApplicationFailure.create({
      type: DAG_RUN_FAILED,
      message: `DAG '${dag.id}' run failed: ${reasons.join('; ') || 'upstream tasks failed'}`,
      nonRetryable: true,
      details: [status],
    });
  }
  return status;
}

const SCHEDULED_START_TIME = defineSearchAttributeKey('TemporalScheduledStartTime', SearchAttributeType.DATETIME);

/**
 * What a schedule starts (under the schedule's own workflow id): the run itself, as a child with the DAG run id of
 * its logical date, so a scheduled run and a trigger or backfill of the same date are one run. The logical date
 * is the scheduled time, and the data interval runs from the previous scheduled time to it. When that run
 * already exists (triggered or backfilled first), this reports it instead of running the DAG again.
 */
async function runScheduled(scheduled: DagRunInput, timing: ScheduleTiming): Promise<DagRunStatus> {
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
    return await executeChild<typeof dagRun>(dagRun, {
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

function mapItems(task: TaskSnapshot, output: Json | undefined): Json[] | string {
  const { over, field } = task.map!;
  const source = field === undefined ? output : isObject(output) ? output[field] : undefined;
  if (Array.isArray(source)) return source;
  const what = field === undefined ? `the output of '${over}'` : `'${field}' of the output of '${over}'`;
  return `task '${task.id}' maps over ${what}, which is not a list (got ${source === undefined ? 'nothing' : typeof source})`;
}

function isObject(value: Json | undefined): value is { [key: string]: Json } {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Large maps run as child workflows of MAP_BATCH_SIZE items, so each history stays small. */
async function runMappedInBatches(
  task: TaskSnapshot,
  ctx: Omit<TaskContext, 'attempt'>,
  items: Json[],
  st: TaskStatus,
  slots: Slots,
  runId: string,
  onChange: () => void,
): Promise<MapBatchResult> {
  const perBatch = Math.min(task.map!.maxActive, slots.max);
  const batchCount = Math.ceil(items.length / MAP_BATCH_SIZE);
  const results: MapBatchResult[] = [];
  const parallelBatches = Math.max(1, Math.floor(task.map!.maxActive / perBatch));
  let next = 0;
  const states: Partial<Record<TaskState, number>> = { waiting: items.length };
  const runBatches = async () => {
    while (next < batchCount) {
      const batch = next++;
      const firstIndex = batch * MAP_BATCH_SIZE;
      const batchInput: MapBatchInput = {
        task,
        ctx,
        items: items.slice(firstIndex, firstIndex + MAP_BATCH_SIZE),
        firstIndex,
        maxActive: perBatch,
      };
      await slots.acquire(perBatch);
      try {
        results[batch] = await executeChild<(input: MapBatchInput) => Promise<MapBatchResult>>(MAP_BATCH_WORKFLOW, {
          workflowId: `${runId}.${task.id}.batch-${batch}`,
          args: [batchInput],
          staticSummary: `task ${task.id} [${firstIndex}..${firstIndex + batchInput.items.length - 1}]`,
        });
      } finally {
        slots.release(perBatch);
      }
      const done = results[batch];
      states.waiting = (states.waiting ?? 0) - batchInput.items.length;
      for (const [state, n] of Object.entries(done.states)) {
        states[state as TaskState] = (states[state as TaskState] ?? 0) + n;
      }
      st.mapped = { total: items.length, states: { ...states }, errors: results.flatMap((r) => r?.errors ?? []) };
      onChange();
    }
  };
  await Promise.all(Array.from({ length: Math.min(parallelBatches, batchCount) }, runBatches));
  delete states.waiting;
  return {
    outputs: results.flatMap((r) => r.outputs),
    states,
    errors: results.flatMap((r) => r.errors),
    maxAttempts: Math.max(...results.map((r) => r.maxAttempts)),
  };
}

function detailsMarkdown(status: DagRunStatus): string {
  const rows = status.tasks.map((t) => {
    const mapped = t.mapped ? ` (${t.mapped.total} mapped)` : '';
    const error = t.error ? t.error.message.replace(/\|/g, '\\|').replace(/\s+/g, ' ').slice(0, 120) : '';
    return `| ${t.taskId}${mapped} | ${t.state} | ${t.attempts} | ${error} |`;
  });
  return [
    `**${status.dagId}** · logical date ${status.logicalDate} · **${status.state}**`,
    '',
    '| task | state | attempts | error |',
    '| --- | --- | --- | --- |',
    ...rows,
  ].join('\n');
}
