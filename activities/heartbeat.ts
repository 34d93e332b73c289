import { asyncLocalStorage, type Context } from '@temporalio/activity';

/**
 * Heartbeats that keep a long activity alive. Temporal times an attempt out when no heartbeat arrives within the
 * task's `heartbeatTimeout`, and then starts another attempt beside the one still running. Progress callbacks
 * alone cannot prevent that: one long DuckDB statement, a large upload or a storage retry loop reports nothing
 * for minutes. `keepAlive` heartbeats on a timer while its function runs (the event loop stays free while DuckDB
 * and I/O work), repeating the latest progress, so an attempt is timed out only when its worker is gone.
 */

/** Per running activity: what `keepAlive` was given and the latest progress, repeated by the timer. */
const beats = new WeakMap<
  Context,
  { base: Record<string, unknown>; progress: Record<string, unknown>; sentAt?: number }
>();

/**
 * Progress reported more often than this is kept, not sent (the next report or `keepAlive`'s timer sends it): a
 * task that reports after each of 20,000 small files would otherwise spend a second of its event loop turning
 * heartbeats into payloads that Temporal's core throttles away anyway.
 */
const PROGRESS_INTERVAL_MS = 1_000;

/** Longest pause between heartbeats: short enough for any sensible heartbeatTimeout, cheap (the SDK throttles). */
const MAX_INTERVAL_MS = 5_000;

/**
 * How often `keepAlive` heartbeats: four times per heartbeat timeout, at most every 5 s; undefined (no timer)
 * when the activity has no heartbeat timeout, since then nothing times it out.
 */
export function keepAliveInterval(heartbeatTimeoutMs: number | undefined): number | undefined {
  if (!heartbeatTimeoutMs || heartbeatTimeoutMs <= 0) return undefined;
  return Math.max(100, Math.min(MAX_INTERVAL_MS, Math.floor(heartbeatTimeoutMs / 4)));
}

/**
 * Runs `fn`, heartbeating `details` (with the latest `reportProgress` over them) every few seconds until it
 * settles. Outside an activity (plain function calls, tests of the steps) it just runs `fn`.
 */
export async function keepAlive<T>(
  fn: () => Promise<T>,
  details: Record<string, unknown> = {},
  opts: { intervalMs?: number } = {},
): Promise<T> {
  const ctx = asyncLocalStorage.getStore();
  const intervalMs = opts.intervalMs ?? keepAliveInterval(ctx?.info.heartbeatTimeoutMs);
  if (!ctx) return fn();
  const state = beats.get(ctx) ?? { base: {}, progress: {} };
  state.base = { ...state.base, ...details };
  beats.set(ctx, state);
  if (intervalMs === undefined) return fn();
  const timer = setInterval(() => ctx.heartbeat({ ...state.base, ...state.progress }), intervalMs);
  try {
    return await fn();
  } finally {
    clearInterval(timer);
  }
}

/**
 * Heartbeats progress (at most once a second: see PROGRESS_INTERVAL_MS), and makes `keepAlive` repeat the latest
 * until the next report. No-op outside an activity.
 */
export function reportProgress(progress: object): void {
  const ctx = asyncLocalStorage.getStore();
  if (!ctx) return;
  const state = beats.get(ctx) ?? { base: {}, progress: {} };
  state.progress = { ...progress };
  beats.set(ctx, state);
  const now = Date.now();
  if (state.sentAt !== undefined && now - state.sentAt < PROGRESS_INTERVAL_MS) return;
  state.sentAt = now;
  ctx.heartbeat({ ...state.base, ...state.progress });
}
