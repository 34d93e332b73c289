/**
 * Slots of a shared resource, one long-lived workflow per resource, granted first come first served to task
 * instances of any run of any DAG:
 * - a named pool (`pool: 's3_heavy'` on a task; `tempoflow pools set/list/delete`) has N slots and lives until
 *   it is deleted;
 * - an `exclusiveBy` lock is a pool of one slot per param value, started by its first request and ended after a
 *   minute without holders or requests.
 *
 * It speaks the lock protocol of resource-lock.ts (the `acquire` and `release` signals, `lockGranted` to the
 * requester), so runners and lock workflows of either version work together. A slot comes back when its holder
 * releases it, when its lease ends, or, while others wait, when the holder's run is found closed (terminated).
 */
import {
  ApplicationFailure,
  condition,
  continueAsNew,
  defineQuery,
  defineUpdate,
  getExternalWorkflowHandle,
  proxyActivities,
  setHandler,
  workflowInfo,
} from '@temporalio/workflow';
import type { FrameworkActivities } from '../worker/framework-activities';
import { acquireLockSignal, lockGrantedSignal, releaseLockSignal } from './resource-lock';
import type { LockRequest } from './resource-lock';

export const RESOURCE_POOL_WORKFLOW = 'resourcePool';
export const POOL_NOT_FOUND = 'PoolNotFound';
export const POOL_IN_USE = 'PoolInUse';

export function poolWorkflowId(name: string): string {
  return `pool__${name}`;
}

export interface PoolHolder extends LockRequest {
  /** ISO 8601. */
  grantedAt: string;
  /** Workflow time (ms) when the lease ends. */
  expiresAtMs: number;
  slots: number;
}

export interface PoolState {
  /** `pool`: created by `tempoflow pools set`, lives until deleted. `lock`: an `exclusiveBy` lock, ends when idle. */
  kind: 'pool' | 'lock';
  name: string;
  slots: number;
  description?: string;
  waiting: LockRequest[];
  holders: PoolHolder[];
}

export interface PoolStatus {
  name: string;
  kind: 'pool' | 'lock';
  slots: number;
  description?: string;
  used: number;
  waiting: number;
  holders: { requesterId: string; requestId: string; slots: number; since: string }[];
  queue: { requesterId: string; requestId: string; slots: number }[];
}

export const poolStatusQuery = defineQuery<PoolStatus>('poolStatus');
export const configurePoolUpdate = defineUpdate<PoolStatus, [{ slots: number; description?: string }]>('configurePool');
/** Ends the pool; refused (`PoolInUse`) while any slot is held or any request waits. */
export const deletePoolUpdate = defineUpdate<PoolStatus, []>('deletePool');

/** How often, while requests wait, the holders' runs are checked for having closed without releasing. */
export const HOLDER_CHECK_MS = 10_000;
/** An idle lock lingers this long so a burst of requests shares one workflow. */
const LOCK_IDLE_MS = 60_000;
/** Continue as new past this many events, carrying holders and waiting requests. */
const MAX_HISTORY_EVENTS = 2_000;

export async function resourcePool(initial: PoolState): Promise<PoolStatus> {
  // Here rather than at module level: clients import this module's definitions.
  const { tempoflowClosedRequesters: closedRequesters } = proxyActivities<FrameworkActivities>({
    startToCloseTimeout: '1m',
    retry: { maximumAttempts: 3 },
  });
  const state: PoolState = { ...initial, waiting: [...initial.waiting], holders: [...initial.holders] };
  /** Requests released before they were queued (a run cancelled while asking). */
  const released = new Set<string>();
  let version = 0;
  let deleted = false;
  const used = () => state.holders.reduce((n, h) => n + h.slots, 0);
  const status = (): PoolStatus => ({
    name: state.name,
    kind: state.kind,
    slots: state.slots,
    ...(state.description !== undefined ? { description: state.description } : {}),
    used: used(),
    waiting: state.waiting.length,
    holders: state.holders.map((h) => ({
      requesterId: h.requesterId,
      requestId: h.requestId,
      slots: h.slots,
      since: h.grantedAt,
    })),
    queue: state.waiting.map((r) => ({ requesterId: r.requesterId, requestId: r.requestId, slots: r.slots ?? 1 })),
  });
  const known = (requestId: string) =>
    state.waiting.some((r) => r.requestId === requestId) || state.holders.some((h) => h.requestId === requestId);
  const drop = (requestIds: Set<string>) => {
    state.holders = state.holders.filter((h) => !requestIds.has(h.requestId));
    state.waiting = state.waiting.filter((r) => !requestIds.has(r.requestId));
    version++;
  };

  setHandler(acquireLockSignal, (request) => {
    if (released.has(request.requestId) || known(request.requestId)) return;
    state.waiting.push(request);
    version++;
  });
  setHandler(releaseLockSignal, ({ requestId }) => {
    if (!known(requestId)) released.add(requestId);
    drop(new Set([requestId]));
  });
  setHandler(poolStatusQuery, status);
  setHandler(
    configurePoolUpdate,
    ({ slots, description }) => {
      // Fewer slots than are held: the holders keep theirs, new grants wait until usage is under the new size.
      state.slots = slots;
      if (description !== undefined) state.description = description;
      version++;
      return status();
    },
    {
      validator: ({ slots }) => {
        if (!Number.isInteger(slots) || slots < 1) throw new Error(`slots must be a positive integer (got ${slots})`);
      },
    },
  );
  setHandler(
    deletePoolUpdate,
    () => {
      deleted = true;
      version++;
      return status();
    },
    {
      validator: () => {
        if (state.holders.length || state.waiting.length) {
          throw ApplicationFailure.create({
            type: POOL_IN_USE,
            nonRetryable: true,
            message:
              `pool '${state.name}' is in use (${used()} of ${state.slots} slots held, ${state.waiting.length} ` +
              `waiting; held by ${state.holders.map((h) => h.requesterId).join(', ') || 'none'}): delete it once ` +
              'its tasks have ended',
          });
        }
      },
    },
  );

  const grant = (request: LockRequest) => {
    const slots = Math.min(request.slots ?? 1, state.slots);
    state.holders.push({
      ...request,
      slots,
      grantedAt: new Date().toISOString(),
      expiresAtMs: Date.now() + request.leaseMs,
    });
    getExternalWorkflowHandle(request.requesterId, request.requesterRunId)
      .signal(lockGrantedSignal, { requestId: request.requestId })
      // The requester is gone (finished or terminated): its slots come back.
      .catch(() => drop(new Set([request.requestId])));
  };

  let lastHolderCheckMs = Date.now();
  let idleSinceMs = Date.now();
  while (!deleted) {
    // Before granting, so no grant's signal is still in flight.
    if (workflowInfo().historyLength > MAX_HISTORY_EVENTS) return continueAsNew<typeof resourcePool>(state);
    // First come first served: the head waits until it fits (a request larger than the pool gets the whole pool
    // once it is empty), so a large request is never starved by small ones behind it.
    while (state.waiting.length) {
      const head = state.waiting[0]!;
      if (state.holders.length && used() + Math.min(head.slots ?? 1, state.slots) > state.slots) break;
      state.waiting.shift();
      grant(head);
    }
    const now = Date.now();
    const busy = state.holders.length > 0 || state.waiting.length > 0;
    if (busy) idleSinceMs = now;
    else if (state.kind === 'lock' && now - idleSinceMs >= LOCK_IDLE_MS) return status();
    const wakeAt = [
      ...state.holders.map((h) => h.expiresAtMs),
      ...(state.waiting.length && state.holders.length ? [lastHolderCheckMs + HOLDER_CHECK_MS] : []),
      ...(state.kind === 'lock' && !busy ? [idleSinceMs + LOCK_IDLE_MS] : []),
    ];
    const seen = version;
    const changed = () => version !== seen || deleted;
    if (wakeAt.length) await condition(changed, Math.max(1, Math.min(...wakeAt) - now));
    else await condition(changed);

    const expired = state.holders.filter((h) => h.expiresAtMs <= Date.now()).map((h) => h.requestId);
    if (expired.length) drop(new Set(expired));
    if (state.waiting.length && state.holders.length && Date.now() - lastHolderCheckMs >= HOLDER_CHECK_MS) {
      lastHolderCheckMs = Date.now();
      const gone = await closedRequesters({
        requesters: state.holders.map((h) => ({
          requestId: h.requestId,
          workflowId: h.requesterId,
          ...(h.requesterRunId ? { runId: h.requesterRunId } : {}),
        })),
      }).catch(() => [] as string[]);
      if (gone.length) drop(new Set(gone));
    }
  }
  return status();
}
