import {
  ActivityCancellationType,
  ActivityFailure,
  ApplicationFailure,
  isCancellation,
  patched,
  proxyActivities,
  proxyLocalActivities,
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
  /** Called when an attempt failed and another will follow (the status says which and why). */
  onRetry?: (status: TaskInstanceStatus) => void,
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
      const output = await runAttempt(task, { ...ctx, attempt }, activity);
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
      onRetry?.(status);
      await sleep(delayMs);
      delayMs = Math.min(delayMs * retry.backoffCoefficient, retry.maxDelayMs);
    } finally {
      status.endedAt = new Date().toISOString();
      onChange();
    }
  }
}

/** The activity of one attempt of a task instance: the runner drives retries, so Temporal makes one attempt. */
export function taskActivity(
  task: TaskSnapshot,
  mapIndex: number | undefined,
  preferred?: { taskQueue: string; scheduleToStartMs: number },
): (ctx: TaskContext) => Promise<Json> {
  const summary = mapIndex === undefined ? `task ${task.id}` : `task ${task.id} [${mapIndex}]`;
  if (task.localActivity) {
    return proxyLocalActivities<Record<string, (ctx: TaskContext) => Promise<Json>>>({
      startToCloseTimeout: task.executionTimeoutMs,
      retry: { maximumAttempts: 1 },
      cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
      summary,
    })[task.activity]!;
  }
  return proxyActivities<Record<string, (ctx: TaskContext) => Promise<Json>>>({
    startToCloseTimeout: task.executionTimeoutMs,
    heartbeatTimeout: task.heartbeatTimeoutMs,
    taskQueue: preferred?.taskQueue ?? task.taskQueue,
    ...(preferred ? { scheduleToStartTimeout: preferred.scheduleToStartMs } : {}),
    retry: { maximumAttempts: 1 },
    cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
    summary,
  })[task.activity]!;
}

/**
 * One attempt of a task instance: a first attempt of a task with `preferWorkerOf` is offered to that worker's own
 * queue first; otherwise (and when that worker does not take it) it runs on the task's queue.
 */
export async function runAttempt(
  task: TaskSnapshot,
  ctx: TaskContext,
  activity = taskActivity(task, ctx.mapIndex),
): Promise<Json> {
  const preferred = ctx.attempt === 1 ? preferredQueue(task, ctx) : undefined;
  const offered = preferred ? await onPreferredWorker(task, ctx.mapIndex, preferred, ctx) : NOT_TAKEN;
  return offered !== NOT_TAKEN ? offered : activity(ctx);
}

/** How long a first attempt waits for the preferred worker before it goes to the task's usual queue. */
export const PREFERRED_WORKER_WAIT_MS = 5_000;
const NOT_TAKEN = Symbol('not taken');

/**
 * The worker queue named by the output of the task's `preferWorkerOf` upstream (its `workerQueue`), if any.
 * Recorded histories have no such tasks; `patched` marks the histories that offer attempts this way.
 */
function preferredQueue(task: TaskSnapshot, ctx: Omit<TaskContext, 'attempt'>): string | undefined {
  if (!task.preferWorkerOf) return undefined;
  const out = ctx.upstream[task.preferWorkerOf];
  const queue = out && typeof out === 'object' && !Array.isArray(out) ? out.workerQueue : undefined;
  if (typeof queue !== 'string' || queue === task.taskQueue) return undefined;
  return patched('tempoflow-prefer-worker') ? queue : undefined;
}

/**
 * Offers the attempt to one worker's own queue. A worker that is gone (or busy) never starts it, and after
 * `PREFERRED_WORKER_WAIT_MS` the attempt runs on the shared queue instead; any other outcome is the attempt's.
 */
async function onPreferredWorker(
  task: TaskSnapshot,
  mapIndex: number | undefined,
  queue: string,
  ctx: TaskContext,
): Promise<Json | typeof NOT_TAKEN> {
  try {
    return await taskActivity(task, mapIndex, { taskQueue: queue, scheduleToStartMs: PREFERRED_WORKER_WAIT_MS })(ctx);
  } catch (err) {
    const root = taskFailure(err);
    if (root instanceof TimeoutFailure && String(root.timeoutType) === 'SCHEDULE_TO_START') return NOT_TAKEN;
    throw err;
  }
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
