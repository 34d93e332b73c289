import { condition, isCancellation, patched } from '@temporalio/workflow';
import type {
  Json,
  RunAlertsStatus,
  TaskContext,
  TaskError,
  TaskInstanceStatus,
  TaskSnapshot,
  TaskState,
  TaskStatus,
} from '../core/types';
import { AlertSender, retryAlert } from './alerts';
import { runTaskInstance, TaskInstanceFailed } from './task-instance';

/** Counting semaphore for task instances running at once (deterministic: workflow code). */
export class Slots {
  private used = 0;
  constructor(readonly max: number) {}
  async acquire(n: number): Promise<void> {
    await condition(() => this.used + n <= this.max);
    this.used += n;
  }
  release(n: number): void {
    this.used -= n;
  }
}

export interface MapBatchInput {
  task: TaskSnapshot;
  ctx: Omit<TaskContext, 'attempt'>;
  items: Json[];
  /** Map index of `items[0]`. */
  firstIndex: number;
  maxActive: number;
}

export interface MapBatchResult {
  outputs: Json[];
  states: Partial<Record<TaskState, number>>;
  errors: { mapIndex: number; error: TaskError }[];
  maxAttempts: number;
  /** The retry alerts the batch sent (absent when it sent none), for the run's status. */
  alerts?: RunAlertsStatus;
}

/** Runs instances of a mapped task, at most `slots`/`task.map.maxActive` at once; failures are collected. */
export async function runMappedInline(
  task: TaskSnapshot,
  ctx: Omit<TaskContext, 'attempt'>,
  items: Json[],
  firstIndex: number,
  slots: Slots,
  onChange: (instances: TaskInstanceStatus[]) => void,
): Promise<MapBatchResult> {
  const instances: TaskInstanceStatus[] = items.map(() => ({ state: 'waiting', attempts: 0 }));
  const outputs: Json[] = new Array<Json>(items.length).fill(null);
  const errors: MapBatchResult['errors'] = [];
  let next = 0;
  const lane = async () => {
    while (next < items.length) {
      const i = next++;
      instances[i]!.state = 'scheduled';
      await slots.acquire(1);
      try {
        outputs[i] = await runTaskInstance(
          task,
          { ...ctx, mapIndex: firstIndex + i, item: items[i]! },
          instances[i]!,
          () => onChange(instances),
        );
      } catch (err) {
        if (isCancellation(err)) throw err;
        const error = err instanceof TaskInstanceFailed ? err.error : { message: String(err) };
        errors.push({ mapIndex: firstIndex + i, error });
      } finally {
        slots.release(1);
      }
    }
  };
  const lanes = Math.min(task.map?.maxActive ?? 1, items.length);
  await Promise.all(Array.from({ length: lanes }, lane));
  errors.sort((a, b) => a.mapIndex - b.mapIndex);
  return {
    outputs,
    states: countStates(instances),
    errors,
    maxAttempts: Math.max(0, ...instances.map((s) => s.attempts)),
  };
}

function countStates(instances: TaskInstanceStatus[]): Partial<Record<TaskState, number>> {
  const states: Partial<Record<TaskState, number>> = {};
  for (const s of instances) states[s.state] = (states[s.state] ?? 0) + 1;
  return states;
}

export function summarizeInstances(st: TaskStatus, instances: TaskInstanceStatus[]): void {
  st.attempts = Math.max(0, ...instances.map((s) => s.attempts));
  st.mapped = {
    total: instances.length,
    states: countStates(instances),
    errors: st.mapped?.errors ?? [],
  };
}

/** Marks batches run by `runBatch`; batches recorded before it replay through `runMappedInline`. */
export const LEAN_BATCH_PATCH = 'tempoflow-lean-map-batch';

/** Child workflow for one batch of a large map: keeps each history well under Temporal's limits. */
export async function dagRunMapBatch(input: MapBatchInput): Promise<MapBatchResult> {
  if (patched(LEAN_BATCH_PATCH)) return runBatch(input);
  const slots = new Slots(input.maxActive);
  return runMappedInline(input.task, input.ctx, input.items, input.firstIndex, slots, () => undefined);
}

/**
 * Runs a batch's instances, at most `maxActive` at once: each instance's end starts the next one. No lanes and
 * no conditions: workflow code pays for every promise it makes (the SDK captures a stack trace for each, for its
 * stack trace query) and re-checks every waiting condition after every step, which made the lanes of
 * `runMappedInline` cost more worker CPU than the activities they ran. The batch drives its instances' retries,
 * so it also sends their `onRetry` alerts, and returns once they are delivered.
 */
function runBatch({ task, ctx, items, firstIndex, maxActive }: MapBatchInput): Promise<MapBatchResult> {
  const instances: TaskInstanceStatus[] = items.map(() => ({ state: 'waiting', attempts: 0 }));
  const outputs = new Array<Json>(items.length).fill(null);
  const errors: MapBatchResult['errors'] = [];
  const alerts = new AlertSender({ sent: 0, errors: [] });
  // The snapshot's task callbacks include the DAG's `onRetry` (core/alerts.ts).
  const onRetry = task.alerts?.onRetry;
  const result = (): MapBatchResult => {
    errors.sort((a, b) => a.mapIndex - b.mapIndex);
    return {
      outputs,
      states: countStates(instances),
      errors,
      maxAttempts: instances.reduce((max, s) => Math.max(max, s.attempts), 0),
      ...(alerts.status.sent > 0 ? { alerts: alerts.status } : {}),
    };
  };
  if (items.length === 0) return Promise.resolve(result());
  return new Promise((resolve, reject) => {
    let next = 0;
    let ended = 0;
    let cancelled = false;
    const finish = () => alerts.drain().then(() => resolve(result()), reject);
    const end = () => (++ended === items.length ? void finish() : startNext());
    const startNext = (): void => {
      if (cancelled || next >= items.length) return;
      const i = next++;
      const instanceCtx = { ...ctx, mapIndex: firstIndex + i, item: items[i]! };
      const retried = onRetry?.length
        ? (status: TaskInstanceStatus) =>
            alerts.send(
              onRetry,
              retryAlert(ctx, task.id, firstIndex + i, status.attempts, status.error?.message ?? 'the attempt failed'),
            )
        : undefined;
      runTaskInstance(task, instanceCtx, instances[i]!, () => undefined, retried).then(
        (output) => {
          outputs[i] = output;
          end();
        },
        (err: Error) => {
          if (isCancellation(err)) {
            cancelled = true;
            return reject(err);
          }
          const error = err instanceof TaskInstanceFailed ? err.error : { message: String(err) };
          errors.push({ mapIndex: firstIndex + i, error });
          end();
        },
      );
    };
    for (let lane = 0; lane < Math.min(maxActive, items.length); lane++) startNext();
  });
}
