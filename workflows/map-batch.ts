import { condition, isCancellation } from '@temporalio/workflow';
import type {
  Json,
  TaskContext,
  TaskError,
  TaskInstanceStatus,
  TaskSnapshot,
  TaskState,
  TaskStatus,
} from '../core/types';
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

/** Child workflow for one batch of a large map: keeps each history well under Temporal's limits. */
export async function dagRunMapBatch(input: MapBatchInput): Promise<MapBatchResult> {
  const slots = new Slots(input.maxActive);
  return runMappedInline(input.task, input.ctx, input.items, input.firstIndex, slots, () => undefined);
}
