import { condition, continueAsNew, defineSignal, getExternalWorkflowHandle, setHandler } from '@temporalio/workflow';

/**
 * The lock protocol of shared resources: a requester asks with `acquire`, learns of its grant by `lockGranted`,
 * and gives the slot back with `release`. Locks and pools are served by the pool workflow (resource-pool.ts);
 * `resourceLock` below is the one-slot lock of earlier versions, kept so lock workflows started by them finish.
 */
export interface LockRequest {
  /** Workflow id of the requesting run, which receives `lockGrantedSignal`. */
  requesterId: string;
  /** The requesting run's execution: a holder whose execution closed gives its slots back. */
  requesterRunId?: string;
  requestId: string;
  /** The lock is taken back after this long without a release (a holder that died). */
  leaseMs: number;
  /** Slots of a pool this request takes (default 1). */
  slots?: number;
}

export const acquireLockSignal = defineSignal<[LockRequest]>('acquire');
export const releaseLockSignal = defineSignal<[{ requestId: string }]>('release');
export const lockGrantedSignal = defineSignal<[{ requestId: string }]>('lockGranted');

export const RESOURCE_LOCK_WORKFLOW = 'resourceLock';

export function lockWorkflowId(resource: string): string {
  return `lock__${resource}`;
}

/** Grants before continuing as new, to keep the history short. */
const GRANTS_PER_RUN = 200;

export async function resourceLock(pending: LockRequest[] = []): Promise<void> {
  const queue = [...pending];
  const released = new Set<string>();
  setHandler(acquireLockSignal, (request) => {
    if (released.has(request.requestId)) return; // cancelled before its turn
    if (!queue.some((r) => r.requestId === request.requestId)) queue.push(request);
  });
  setHandler(releaseLockSignal, ({ requestId }) => {
    released.add(requestId);
    const waiting = queue.findIndex((r) => r.requestId === requestId);
    if (waiting > 0) queue.splice(waiting, 1);
  });

  for (let grants = 0; grants < GRANTS_PER_RUN; grants++) {
    // Linger briefly when idle so a burst of requests shares one lock workflow.
    if (!(await condition(() => queue.length > 0, '1 minute'))) return;
    const holder = queue[0]!;
    if (!released.has(holder.requestId)) {
      try {
        await getExternalWorkflowHandle(holder.requesterId).signal(lockGrantedSignal, { requestId: holder.requestId });
        await condition(() => released.has(holder.requestId), holder.leaseMs);
      } catch {
        // The requester is gone (finished or terminated): the lock passes on.
      }
    }
    queue.shift();
  }
  await continueAsNew<typeof resourceLock>(queue.filter((r) => !released.has(r.requestId)));
}
