/**
 * The runner's side of `exclusiveBy` locks and named pools (workflow code): asks the resource's pool workflow
 * (resource-pool.ts) for its slots through a framework activity, learns of the grant by signal, and releases
 * them by signal.
 */
import {
  CancellationScope,
  condition,
  getExternalWorkflowHandle,
  patched,
  proxyActivities,
  setHandler,
  uuid4,
  workflowInfo,
} from '@temporalio/workflow';
import { canonicalLocationSyntax } from '../core/locations';
import type { Json, TaskSnapshot } from '../core/types';
import type { FrameworkActivities } from '../worker/framework-activities';
import { lockGrantedSignal, lockWorkflowId, releaseLockSignal } from './resource-lock';
import { poolWorkflowId } from './resource-pool';

const { tempoflowRequestLock: requestLock } = proxyActivities<FrameworkActivities>({
  startToCloseTimeout: '1m',
  retry: { maximumAttempts: 10 },
});

/**
 * The lock key of an `exclusiveBy` param value. Every spelling of one location is one lock (`s3a://b/lake/` =
 * `s3://b/lake`; relative and symlinked local spellings meet at the lake's own lease). Runs started before this
 * keep the key they locked with.
 */
export function lockKey(value: Json | undefined): string {
  return typeof value !== 'string'
    ? JSON.stringify(value)
    : patched('canonical-lock-key')
      ? canonicalLocationSyntax(value)
      : value;
}

export interface HeldLock {
  lockId: string;
  requestId: string;
}

/** The lease outlasts every attempt of the task and its retry delays, so only a holder that died loses it. */
function leaseOf(task: TaskSnapshot): number {
  const { retry } = task;
  return task.executionTimeoutMs * retry.maxAttempts + retry.maxDelayMs * retry.maxAttempts + 60_000;
}

/** One per run: receives the grants of its lock requests. */
export class LockClient {
  private readonly granted = new Set<string>();

  constructor(private readonly runId: string) {
    setHandler(lockGrantedSignal, ({ requestId }) => void this.granted.add(requestId));
  }

  /** Queues a request for the lock of `param` (the task's `exclusiveBy` value) and resolves once it is granted. */
  async acquire(task: TaskSnapshot, param: Json | undefined): Promise<HeldLock> {
    const lockId = lockWorkflowId(lockKey(param));
    const requestId = `${this.runId}/${task.id}/${uuid4()}`;
    await requestLock({
      lockId,
      request: { requesterId: this.runId, requesterRunId: workflowInfo().runId, requestId, leaseMs: leaseOf(task) },
      taskQueue: workflowInfo().taskQueue,
    });
    await condition(() => this.granted.has(requestId));
    return { lockId, requestId };
  }

  /**
   * Queues a request for the task's slots of its named pool and resolves once they are granted; `onQueued` gets
   * the pool's usage as the request joined it. Fails (`PoolNotFound`, naming the pool and the task) when the
   * pool does not exist.
   */
  async acquirePool(
    task: TaskSnapshot,
    dagId: string,
    onQueued: (usage: { slots: number; used: number; waiting: number }) => void,
  ): Promise<HeldLock> {
    const { name, slots } = task.pool!;
    const lockId = poolWorkflowId(name);
    const requestId = `${this.runId}/${task.id}/${uuid4()}`;
    const usage = await requestLock({
      lockId,
      request: {
        requesterId: this.runId,
        requesterRunId: workflowInfo().runId,
        requestId,
        leaseMs: leaseOf(task),
        slots,
      },
      taskQueue: workflowInfo().taskQueue,
      pool: { name, dagId, taskId: task.id },
    });
    if (usage && !this.granted.has(requestId)) onQueued(usage);
    await condition(() => this.granted.has(requestId));
    return { lockId, requestId };
  }

  /** Releases even while the run is being cancelled. */
  release(lock: HeldLock): Promise<void> {
    return CancellationScope.nonCancellable(() =>
      getExternalWorkflowHandle(lock.lockId).signal(releaseLockSignal, { requestId: lock.requestId }),
    );
  }
}
