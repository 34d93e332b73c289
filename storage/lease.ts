import { randomBytes } from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';
import { TempoflowError } from '../core/errors';
import { isNotFound } from './errors';
import type { Store } from './store';
import { joinUri } from './uri';

/**
 * A lease kept in storage itself (a lake's `_state/lease/`), so whoever writes to the same place meets the same
 * lease: workers of different Temporal servers, `trigger --local` beside a worker, any spelling of the location.
 *
 * Layout: one file per generation, `<dir>/<generation, 12 digits>.json`, each created only with
 * `Store.createIfAbsent` (S3 `If-None-Match: *`, local exclusive hard link), so of several takers of a generation
 * exactly one wins. The holder is the highest generation. A generation is free when its file says `released` or
 * its `expiresAt` has passed; acquiring creates the next generation (a loser re-reads and waits). Only the holder
 * ever rewrites its own file (renew, release); takers never touch it. Older generations are deleted by the next
 * holder (the highest is never deleted, so a taken-over holder always sees a higher generation).
 *
 * Timing:
 * - `ttlMs` (default 2 minutes): how long a holder that stops renewing blocks others. A dead worker's lease is
 *   taken over after that, and the taker reports the previous holder in `tookOver`.
 * - Safety margin = min(ttl/4, 15 s). A holder counts its lease as lost once less than the margin remains before
 *   `expiresAt`, and a renewal only counts if its write completed before that point; takers wait for `expiresAt`
 *   itself. So a holder that passes `assertHeld` has at least the margin before anyone may take over: its next
 *   write must land within it. Assumes the workers' clocks agree to well within the margin (NTP: milliseconds).
 * - Holders should renew every ttl/4 or so (then `expiresAt` is always at least ttl/2 away).
 * - `acquire` polls a held lease every `pollMs` (default min(1 s, ttl/10), with jitter) for up to `waitMs`
 *   (default 30 s), then throws `LeaseBusyError` (retryable: the task tries again later).
 * - `assertHeld` and `renew` list the lease folder and read the holder's own file: 2 requests (renew 3).
 */

export interface LeaseOptions {
  /** How long the lease lasts unless renewed. Default 120_000. */
  ttlMs?: number;
  /** How long `acquireLease` polls a held lease before throwing `LeaseBusyError`. Default 30_000. */
  waitMs?: number;
  /** Interval between polls of a held lease. Default min(1000, ttl/10). */
  pollMs?: number;
  signal?: AbortSignal;
}

export interface Lease {
  readonly owner: string;
  readonly generation: number;
  /** Set when this acquire took over a lease whose holder let it expire (reported by the caller). */
  readonly tookOver?: { owner: string; expiredAt: string };
  /** Fencing: throws LeaseLostError when another owner took the lease or ours expired (with a safety margin). */
  assertHeld(): Promise<void>;
  /** Extends the expiry (also fencing: throws LeaseLostError when lost). */
  renew(): Promise<void>;
  release(): Promise<void>;
}

/** The lease is held by a live holder and did not come free within `waitMs`. Retryable: try again later. */
export class LeaseBusyError extends TempoflowError {
  override name = 'LeaseBusyError';
  constructor(
    message: string,
    readonly holder: { owner: string; expiresAt: string },
  ) {
    super(message);
  }
}

/** This holder no longer holds the lease (taken over, or expired). Retryable: this attempt must stop writing. */
export class LeaseLostError extends TempoflowError {
  override name = 'LeaseLostError';
}

/** The content of one generation file. */
interface LeaseRecord {
  owner: string;
  generation: number;
  /** Random per acquire: tells this holder's file from one of an owner with the same name. */
  token: string;
  acquiredAt: string;
  expiresAt: string;
  released?: boolean;
}

const GENERATION_FILE = /^(\d{12})\.json$/;

function generationUri(dir: string, generation: number): string {
  return joinUri(dir, `${String(generation).padStart(12, '0')}.json`);
}

/** Generations present in the lease folder, ascending. */
async function listGenerations(store: Store, dir: string): Promise<number[]> {
  const out: number[] = [];
  for (const o of await store.list(dir)) {
    const m = GENERATION_FILE.exec(o.key);
    if (m?.[1]) out.push(Number(m[1]));
  }
  return out.sort((a, b) => a - b);
}

/** A generation's record; undefined if it is gone (deleted by a later holder); null if it cannot be parsed. */
async function readRecord(store: Store, dir: string, generation: number): Promise<LeaseRecord | null | undefined> {
  let text: string;
  try {
    text = (await store.read(generationUri(dir, generation))).toString('utf8');
  } catch (err) {
    if (isNotFound(err)) return undefined;
    throw err;
  }
  try {
    const rec = JSON.parse(text) as Partial<LeaseRecord>;
    if (typeof rec.owner !== 'string' || typeof rec.expiresAt !== 'string' || Number.isNaN(Date.parse(rec.expiresAt)))
      return null;
    return rec as LeaseRecord;
  } catch {
    return null;
  }
}

function recordText(rec: LeaseRecord): string {
  return `${JSON.stringify(rec, null, 2)}\n`;
}

/**
 * Acquires the lease kept in the folder `dirUri` for `owner` (a name for messages and reports: run id and
 * attempt). Waits up to `waitMs` for a live holder to release it, then throws `LeaseBusyError`.
 */
export async function acquireLease(
  store: Store,
  dirUri: string,
  owner: string,
  opts: LeaseOptions = {},
): Promise<Lease> {
  const ttlMs = opts.ttlMs ?? 120_000;
  const waitMs = opts.waitMs ?? 30_000;
  const pollMs = opts.pollMs ?? Math.max(10, Math.min(1000, ttlMs / 10));
  const marginMs = Math.min(ttlMs / 4, 15_000);
  const deadline = Date.now() + waitMs;
  const dir = dirUri.replace(/\/+$/, '');

  for (;;) {
    opts.signal?.throwIfAborted();
    const generations = await listGenerations(store, dir);
    const current = generations.at(-1) ?? 0;
    let previous: LeaseRecord | null | undefined;
    if (current > 0) {
      previous = await readRecord(store, dir, current);
      if (previous === undefined) continue; // deleted between list and read: a newer generation exists
      if (previous && !previous.released && Date.parse(previous.expiresAt) > Date.now()) {
        if (Date.now() >= deadline) {
          throw new LeaseBusyError(
            `the lease ${dir} is held by '${previous.owner}' until ${previous.expiresAt} ` +
              `(waited ${waitMs} ms); the task will be retried`,
            { owner: previous.owner, expiresAt: previous.expiresAt },
          );
        }
        const untilExpiry = Date.parse(previous.expiresAt) - Date.now() + 5;
        const untilDeadline = deadline - Date.now();
        const wait = Math.max(1, Math.min(pollMs * (0.75 + Math.random() / 2), untilExpiry, untilDeadline));
        await delay(wait, undefined, { signal: opts.signal }).catch((err: unknown) => {
          opts.signal?.throwIfAborted(); // the caller's reason, not the timer's AbortError
          throw err;
        });
        continue;
      }
    }

    const generation = current + 1;
    const now = Date.now();
    const record: LeaseRecord = {
      owner,
      generation,
      token: randomBytes(8).toString('hex'),
      acquiredAt: new Date(now).toISOString(),
      expiresAt: new Date(now + ttlMs).toISOString(),
    };
    if (!(await store.createIfAbsent(generationUri(dir, generation), recordText(record)))) continue; // lost the race

    // Older generations are history; the one just created is the highest, so it is never among them.
    for (const g of generations) await store.delete(generationUri(dir, g)).catch(() => undefined);
    const tookOver =
      previous === null
        ? { owner: '(unreadable lease record)', expiredAt: new Date(now).toISOString() }
        : previous && !previous.released
          ? { owner: previous.owner, expiredAt: previous.expiresAt }
          : undefined;
    return heldLease(store, dir, record, { ttlMs, marginMs, tookOver });
  }
}

function heldLease(
  store: Store,
  dir: string,
  initial: LeaseRecord,
  opts: { ttlMs: number; marginMs: number; tookOver?: { owner: string; expiredAt: string } },
): Lease {
  let record = initial;
  let lostReason: string | undefined;
  let released = false;
  const { generation, owner } = initial;
  const lost = (reason: string): LeaseLostError => {
    lostReason ??= reason;
    return new LeaseLostError(
      `lost the lease ${dir} (generation ${generation}, owner '${owner}'): ${lostReason}; ` +
        `this attempt stops writing and will be retried`,
    );
  };
  const timeLeft = () => Date.parse(record.expiresAt) - Date.now();
  // Renew and release write the same file: one at a time, so a renewal in flight never undoes a release.
  let writing: Promise<unknown> = Promise.resolve();
  const oneAtATime = <T>(fn: () => Promise<T>): Promise<T> => {
    const next = writing.then(fn, fn);
    writing = next.catch(() => undefined);
    return next;
  };

  async function check(): Promise<void> {
    if (lostReason) throw lost(lostReason);
    if (released) throw lost('it was released');
    if (timeLeft() < opts.marginMs) throw lost(`it expires at ${record.expiresAt} and was not renewed in time`);
    const newest = (await listGenerations(store, dir)).at(-1) ?? 0;
    if (newest !== generation) {
      const taker = newest > generation ? await readRecord(store, dir, newest).catch(() => undefined) : undefined;
      throw lost(
        newest > generation
          ? `'${taker?.owner ?? 'another owner'}' took it over (generation ${newest})`
          : 'its record is gone from the lease folder',
      );
    }
    const mine = await readRecord(store, dir, generation);
    if (!mine || mine.token !== record.token) throw lost('its record was replaced');
    if (mine.released) throw lost('it was released');
  }

  return {
    owner,
    generation,
    tookOver: opts.tookOver,
    assertHeld: check,

    renew: () => oneAtATime(renew),
    release: () => oneAtATime(release),
  };

  async function renew(): Promise<void> {
    await check();
    const before = record;
    const next = { ...record, expiresAt: new Date(Date.now() + opts.ttlMs).toISOString() };
    await store.write(generationUri(dir, generation), recordText(next));
    // A taker that read the old expiry saw it unexpired only if this write landed before the margin began.
    if (Date.parse(before.expiresAt) - Date.now() < opts.marginMs) {
      await store.write(generationUri(dir, generation), recordText({ ...next, released: true })).catch(() => undefined);
      throw lost(`its renewal completed too close to the expiry ${before.expiresAt}`);
    }
    record = next;
    await check(); // a taker may have won just before the write: then the write above changed nothing it reads
  }

  async function release(): Promise<void> {
    if (released || lostReason) return;
    released = true;
    // Only while still ours: after a takeover, rewriting our old generation could resurrect a deleted file.
    const newest = (await listGenerations(store, dir)).at(-1) ?? 0;
    if (newest !== generation) return;
    await store.write(generationUri(dir, generation), recordText({ ...record, released: true }));
  }
}
