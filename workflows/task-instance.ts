import {
  ActivityCancellationType,
  ActivityFailure,
  ApplicationFailure,
  isCancellation,
  proxyActivities,
  sleep,
  TimeoutFailure,
} from '@temporalio/workflow';
import type { Json, TaskContext, TaskError, TaskInstanceStatus, TaskSnapshot } from '../core/types';

/**
 * Runs one task instance: one activity per attempt. Retries are driven here rather than by the server so the
 * run can show `up_for_retry`, the attempt count and each attempt's error while it happens.
 */
export async function runTaskInstance(
  task: TaskSnapshot,
  ctx: Omit<TaskContext, 'attempt'>,
  status: TaskInstanceStatus,
  onChange: () => void,
): Promise<Json> {
  const { retry } = task;
  let delayMs = retry.initialDelayMs;
  const activity = taskActivity(task, ctx.mapIndex);

  for (let attempt = 1; ; attempt++) {
    status.state = 'running';
    status.attempts = attempt;
    status.startedAt ??= new Date().toISOString();
    onChange();
    try {
      const output = await activity({ ...ctx, attempt });
      status.state = 'success';
      delete status.error;
      return output ?? null;
    } catch (err) {
      if (isCancellation(err)) throw err;
      status.error = describeError(err);
      if (attempt >= retry.maxAttempts || isNonRetryable(err)) {
        status.state = 'failed';
        throw new TaskInstanceFailed(status.error);
      }
      status.state = 'up_for_retry';
      onChange();
      await sleep(delayMs);
      delayMs = Math.min(delayMs * retry.backoffCoefficient, retry.maxDelayMs);
    } finally {
      status.endedAt = new Date().toISOString();
      onChange();
    }
  }
}

/** The activity of one attempt of a task instance: the runner drives retries, so Temporal makes one attempt. */
export function taskActivity(task: TaskSnapshot, mapIndex: number | undefined): (ctx: TaskContext) => Promise<Json> {
  return proxyActivities<Record<string, (ctx: TaskContext) => Promise<Json>>>({
    startToCloseTimeout: task.executionTimeoutMs,
    heartbeatTimeout: task.heartbeatTimeoutMs,
    taskQueue: task.taskQueue,
    retry: { maximumAttempts: 1 },
    cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
    summary: mapIndex === undefined ? `task ${task.id}` : `task ${task.id} [${mapIndex}]`,
  })[task.activity]!;
}

/** Marks an instance whose failure is already recorded in its status. */
export class TaskInstanceFailed extends Error {
  override name = 'TaskInstanceFailed';
  constructor(readonly error: TaskError) {
    super(error.message);
  }
}

export function isNonRetryable(err: unknown): boolean {
  const cause = taskFailure(err);
  return cause instanceof ApplicationFailure && cause.nonRetryable === true;
}

/** What went wrong in the attempt itself (the task's error or the timeout), under the ActivityFailure wrapper. */
function taskFailure(err: unknown): unknown {
  let current = err;
  while (current instanceof ActivityFailure && current.cause) current = current.cause;
  return current;
}

export function describeError(err: unknown): TaskError {
  const root = taskFailure(err);
  if (root instanceof ApplicationFailure) {
    return { message: root.message, ...(root.type ? { type: root.type } : {}) };
  }
  if (root instanceof TimeoutFailure) {
    const kind =
      root.timeoutType === 'HEARTBEAT' ? 'heartbeat timeout (no heartbeat from the worker)' : 'execution timeout';
    return { message: `attempt exceeded its ${kind}`, type: 'Timeout' };
  }
  if (root instanceof Error) return { message: root.message, type: root.name };
  return { message: String(root) };
}
