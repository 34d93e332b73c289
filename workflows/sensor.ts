/**
 * A sensor task's attempt (workflow code): a short check activity, then a durable timer until the next check,
 * until the condition holds or the sensor's timeout passes. Between checks nothing runs on a worker, so a waiting
 * sensor holds no activity slot (Airflow's reschedule mode).
 */
import { ApplicationFailure, sleep } from '@temporalio/workflow';
import type { Json, SensorStatus, TaskContext, TaskSnapshot } from '../core/types';
import { SENSOR_TIMEOUT } from './scheduler';
import { taskActivity } from './task-instance';

/** A sensor's progress across its attempts (a check that throws is retried as any attempt is). */
export interface SensorProgress {
  /** Workflow time (ms) when the sensor gives up: its first check plus its timeout. */
  deadlineMs: number;
  checks: number;
}

export async function runSensor(
  task: TaskSnapshot,
  ctx: TaskContext,
  progress: SensorProgress,
  report: (status: SensorStatus) => void,
): Promise<Json> {
  const { everyMs, timeoutMs } = task.sensor!;
  const check = taskActivity(task, ctx.mapIndex);
  const timeoutAt = new Date(progress.deadlineMs).toISOString();
  for (;;) {
    const verdict = sensorVerdict(task.id, await check(ctx));
    progress.checks++;
    const detail = verdict.detail !== undefined ? { lastDetail: verdict.detail } : {};
    if (verdict.done) {
      report({ checks: progress.checks, timeoutAt, ...detail });
      return verdict.output ?? null;
    }
    const remainingMs = progress.deadlineMs - Date.now();
    if (remainingMs <= 0) {
      report({ checks: progress.checks, timeoutAt, ...detail });
      throw ApplicationFailure.create({
        type: SENSOR_TIMEOUT,
        nonRetryable: true,
        message:
          `sensor '${task.id}' timed out: its condition did not hold within ${humanMs(timeoutMs)} (${progress.checks} ` +
          `checks)${verdict.detail !== undefined ? `; last check: ${verdict.detail}` : ''}`,
      });
    }
    const waitMs = Math.min(everyMs, remainingMs);
    report({
      checks: progress.checks,
      timeoutAt,
      nextCheckAt: new Date(Date.now() + waitMs).toISOString(),
      ...detail,
    });
    await sleep(waitMs);
  }
}

function humanMs(ms: number): string {
  const units: [number, string][] = [
    [86_400_000, 'd'],
    [3_600_000, 'h'],
    [60_000, 'm'],
    [1_000, 's'],
  ];
  const unit = units.find(([size]) => ms >= size && ms % size === 0);
  return unit ? `${ms / unit[0]}${unit[1]}` : `${ms} ms`;
}

/** A check's result as `{ done, output?, detail? }`; anything else fails the task, naming it. */
function sensorVerdict(taskId: string, result: Json): { done: boolean; output?: Json; detail?: string } {
  if (typeof result === 'boolean') return { done: result };
  if (result && typeof result === 'object' && !Array.isArray(result) && typeof result.done === 'boolean') {
    const detail = typeof result.detail === 'string' ? { detail: result.detail } : {};
    return { done: result.done, ...(result.output !== undefined ? { output: result.output } : {}), ...detail };
  }
  throw ApplicationFailure.create({
    type: 'InvalidSensorResult',
    nonRetryable: true,
    message: `sensor '${taskId}' returned ${JSON.stringify(result)?.slice(0, 80)}: a sensor's activity returns true/false or { done: boolean, output?, detail? }`,
  });
}
