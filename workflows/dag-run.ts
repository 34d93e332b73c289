import {
  ApplicationFailure,
  condition,
  executeChild,
  isCancellation,
  patched,
  setCurrentDetails,
  setHandler,
  sleep,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import { dagRunStateAttribute } from '../core/search-attributes';
import type { DagRunInput, DagRunStatus, TaskSnapshot } from '../core/types';
import { DAG_RUN_FAILED, MAP_BATCH_SIZE, MAP_BATCH_WORKFLOW, MAP_INLINE_LIMIT, statusQuery } from './definitions';
import { RunAlerts } from './alerts';
import { detailsMarkdown } from './details';
import { LockClient } from './lock-client';
import type { HeldLock } from './lock-client';
import type { MapBatchInput, MapBatchResult } from './map-batch';
import { runScheduled } from './scheduled-run';
import { runSensor } from './sensor';
import type { SensorProgress } from './sensor';
import { applyOutcome, cancelRun, createRunState, finishRun, nextDecisions } from './scheduler';
import type { Decision, Outcome } from './scheduler';
import { describeError, isNonRetryable, runAttempt } from './task-instance';

/**
 * The generic runner: executes one run of any DAG. The DAG arrives whole in the input, so the history records
 * exactly what ran. What to do next is decided by the scheduler (scheduler.ts, pure); this loop carries out its
 * decisions with Temporal's commands and feeds back their outcomes, in the order they arrive.
 */
export async function dagRun(input: DagRunInput): Promise<DagRunStatus> {
  if (input.fromSchedule) return runScheduled(input, input.fromSchedule);
  const runId = workflowInfo().workflowId;
  const now = () => new Date().toISOString();
  const run = createRunState(input, runId, now(), { mapInlineLimit: MAP_INLINE_LIMIT, mapBatchSize: MAP_BATCH_SIZE });
  setHandler(statusQuery, () => run.status);
  const locks = new LockClient(runId);
  upsertSearchAttributes([dagRunStateAttribute('running')]);
  const alerts = new RunAlerts(input, run, now);
  alerts.startSla();

  const inbox: Outcome[] = [];
  const heldLocks = new Map<string, HeldLock>();
  /** Lock releases still being signalled: the run ends after them. */
  const releases = new Set<Promise<void>>();
  /** Each sensor's deadline and checks, kept across the attempts of its task. */
  const sensors = new Map<string, SensorProgress>();
  const sensorProgress = (task: TaskSnapshot): SensorProgress => {
    let progress = sensors.get(task.id);
    if (!progress) sensors.set(task.id, (progress = { deadlineMs: Date.now() + task.sensor!.timeoutMs, checks: 0 }));
    return progress;
  };
  /** Reports an outcome; a cancellation is not one (the run's own cancellation is handled below). */
  const settle = <T>(promise: Promise<T>, onValue: (value: T) => Outcome, onError: (err: unknown) => Outcome) =>
    void promise.then(
      (value) => inbox.push(onValue(value)),
      (err: unknown) => {
        if (!isCancellation(err)) inbox.push(onError(err));
      },
    );

  const dispatch = (decision: Decision): void => {
    switch (decision.kind) {
      case 'request_lock': {
        const { taskId, task } = decision;
        // Recorded histories have no pool tasks; `patched` marks the runs that ask pools for slots.
        const acquired =
          task.pool && patched('tempoflow-pools')
            ? locks.acquirePool(task, input.dag.id, (usage) => inbox.push({ kind: 'pool_queued', taskId, usage }))
            : locks.acquire(task, decision.lockParam);
        return settle(
          acquired,
          (lock) => (heldLocks.set(taskId, lock), { kind: 'lock_granted', taskId }),
          (err) => ({ kind: 'unit_crashed', taskId, unit: 0, error: describeError(err) }),
        );
      }
      case 'start_attempt': {
        const { taskId, unit, ctx, task } = decision;
        return settle(
          // Recorded histories have no sensors; `patched` marks the runs whose sensors check between timers.
          task.sensor && patched('tempoflow-sensors')
            ? runSensor(task, ctx, sensorProgress(task), (sensor) =>
                inbox.push({ kind: 'sensor_checked', taskId, sensor }),
              )
            : runAttempt(task, ctx),
          (output) => ({ kind: 'attempt_succeeded', taskId, unit, output: output ?? null }),
          (err) => ({
            kind: 'attempt_failed',
            taskId,
            unit,
            error: describeError(err),
            nonRetryable: isNonRetryable(err),
          }),
        );
      }
      case 'start_batch': {
        const { taskId, unit, input: batch } = decision;
        return settle(
          executeChild<(input: MapBatchInput) => Promise<MapBatchResult>>(MAP_BATCH_WORKFLOW, {
            workflowId: `${runId}.${taskId}.batch-${unit}`,
            args: [batch],
            staticSummary: `task ${taskId} [${batch.firstIndex}..${batch.firstIndex + batch.items.length - 1}]`,
          }),
          (result) => ({ kind: 'batch_finished', taskId, unit, result }),
          (err) => ({ kind: 'unit_crashed', taskId, unit, error: describeError(err) }),
        );
      }
      case 'retry_after': {
        const { taskId, unit } = decision;
        return void sleep(decision.delayMs).then(
          () => inbox.push({ kind: 'retry_due', taskId, unit }),
          () => undefined, // cancelled with the run
        );
      }
      case 'release_lock': {
        const lock = heldLocks.get(decision.taskId);
        if (!lock) return;
        heldLocks.delete(decision.taskId);
        // A failed release (the lock workflow gone) loses nothing: the lock passes on when its lease ends.
        const release = locks.release(lock).catch(() => undefined);
        releases.add(release);
        void release.finally(() => releases.delete(release));
        return;
      }
      case 'skip':
      case 'upstream_failed':
      case 'finish_run':
        return; // recorded by the scheduler; the loop ends the run
    }
  };

  try {
    let decisions = nextDecisions(run, now());
    while (!decisions.some((d) => d.kind === 'finish_run')) {
      decisions.forEach(dispatch);
      alerts.afterStep();
      setCurrentDetails(detailsMarkdown(run.status));
      await condition(() => inbox.length > 0);
      decisions = inbox.splice(0).flatMap((outcome) => {
        const followUps = applyOutcome(run, outcome, now());
        alerts.afterOutcome(outcome, followUps);
        return followUps;
      });
      decisions.push(...nextDecisions(run, now()));
    }
    decisions.forEach(dispatch);
    setCurrentDetails(detailsMarkdown(run.status));
    await Promise.all(releases);
  } catch (err) {
    if (!isCancellation(err)) throw err;
    cancelRun(run, now());
    upsertSearchAttributes([dagRunStateAttribute('cancelled')]);
    setCurrentDetails(detailsMarkdown(run.status));
    throw err;
  }

  const { state, failureMessage } = finishRun(run, now());
  upsertSearchAttributes([dagRunStateAttribute(state)]);
  await alerts.finish(state, failureMessage);
  setCurrentDetails(detailsMarkdown(run.status));
  if (failureMessage !== undefined) {
    throw ApplicationFailure.create({
      type: DAG_RUN_FAILED,
      message: failureMessage,
      nonRetryable: true,
      details: [run.status],
    });
  }
  return run.status;
}
