/**
 * The runner's side of `exclusiveBy` locks (workflow code): asks the resource's lock workflow (resource-lock.ts)
 * for the lock through a framework activity, learns of the grant by signal, and releases it by signal.
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

/** One per run: receives the grants of its lock requests. */
export class LockClient {
  private readonly granted = new Set<string>();

  constructor(private readonly runId: string) {
    setHandler(lockGrantedSignal, ({ requestId }) => void this.granted.add(requestId));
  }

  /**
   * Queues a request for the lock of `param` (the task's `exclusiveBy` value) and resolves once it is granted.
   * The lease outlasts every attempt of the task and its retry delays, so only a holder that died loses it.
   */
  async acquire(task: TaskSnapshot, param: Json | undefined): Promise<HeldLock> {
    const lockId = lockWorkflowId(lockKey(param));
    const requestId = `${this.runId}/${task.id}/${uuid4()}`;
    const { retry } = task;
    const leaseMs = task.executionTimeoutMs * retry.maxAttempts + retry.maxDelayMs * retry.maxAttempts + 60_000;
    await requestLock({
      lockId,
      request: { requesterId: this.runId, requestId, leaseMs },
      taskQueue: workflowInfo().taskQueue,
    });
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
