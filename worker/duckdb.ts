/**
 * DuckDB for task activities, bounded per worker process: `withDuckDb` opens a scratch database for one call
 * and never more than `instances` at once (a call that would open one more waits), so a worker's DuckDB memory
 * stays within `instances x memoryLimit` whatever its tasks do. The worker hands its settings to a project's
 * activities (`ProjectActivityDeps['duckdb']`); activities open DuckDB through here, not `DuckDBInstance`.
 */
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { DuckDBConnection } from '@duckdb/node-api';
import { NonRetryableTaskError } from '../core/errors';

/*
 * Sized for the reference worker, 2 cores and 24 GiB (see also DEFAULT_MAX_CONCURRENT_ACTIVITIES):
 * - 2GB per DuckDB (not 1GB): the joins of build_tables spill less; DuckDB spills to disk past it anyway.
 * - 2 DuckDB databases open at once (not one per task): the 4 tasks spend much of their time in storage and JS,
 *   and with threads = cores, two DuckDBs already keep 2 cores busy; 4 month builds at once took the worker past
 *   2 GB at 10M events with no gain in time. Worst case 2 x 2GB, with Node, fits any 8 GB machine.
 * - DuckDB threads = the cores (not a fixed 2): on the reference machine the two agree, elsewhere a lone heavy
 *   task (build_tables runs alone) uses the whole machine. Lower it when several DuckDB tasks run at once.
 */
export const DEFAULT_DUCKDB_MEMORY_LIMIT = '2GB';
export const DEFAULT_DUCKDB_INSTANCES = 2;
export const defaultDuckDbThreads = (): number => Math.max(1, os.availableParallelism());

/** Resources of the DuckDB a call opens; memory beyond the limit spills to `tempDirectory`. Unset: the defaults. */
export interface DuckDbOptions {
  /** e.g. `'2GB'`. Default DEFAULT_DUCKDB_MEMORY_LIMIT. */
  memoryLimit?: string;
  /** Default the machine's cores (defaultDuckDbThreads). */
  threads?: number;
  /** Spill directory. Default a directory in the call's scratch directory. */
  tempDirectory?: string;
  /** Where activities put downloaded inputs and files to upload (`withScratch`). Default the OS temp dir. */
  workDirectory?: string;
  /** DuckDB databases open at once in this process; a call that would open one more waits. Default 2. */
  instances?: number;
}

/** Databases open in this process, and the calls waiting for one to close (first come, first served). */
const open = { count: 0, waiting: [] as (() => void)[] };

async function takeInstance(limit: number, signal?: AbortSignal): Promise<void> {
  while (open.count >= limit) {
    signal?.throwIfAborted();
    await new Promise<void>((resolve) => {
      const wake = () => {
        signal?.removeEventListener('abort', wake);
        open.waiting = open.waiting.filter((w) => w !== wake);
        resolve();
      };
      open.waiting.push(wake);
      signal?.addEventListener('abort', wake, { once: true });
    });
  }
  signal?.throwIfAborted();
  open.count++;
}

function returnInstance(): void {
  open.count--;
  open.waiting[0]?.();
}

/** Makes a scratch directory for one call; the caller removes it (see `withScratch`). */
export async function withScratch<T>(
  settings: DuckDbOptions,
  prefix: string,
  fn: (dir: string) => Promise<T>,
): Promise<T> {
  const base = settings.workDirectory ?? os.tmpdir();
  await mkdir(base, { recursive: true });
  const dir = await mkdtemp(path.join(base, `tempoflow-${prefix}-`));
  try {
    return await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Opens a scratch DuckDB database with the given limits for one call, and always closes it. */
export async function withDuckDb<T>(
  settings: DuckDbOptions,
  scratchDir: string,
  fn: (conn: DuckDBConnection) => Promise<T>,
  signal?: AbortSignal,
  opts: { preserveOrder?: boolean } = {},
): Promise<T> {
  await takeInstance(settings.instances ?? DEFAULT_DUCKDB_INSTANCES, signal);
  try {
    return await openDuckDb(settings, scratchDir, fn, signal, opts);
  } finally {
    returnInstance();
  }
}

/**
 * DuckDB's "Out of Memory Error" as a task error that says which setting to change (its own advice, `SET
 * memory_limit`, is not something a task's user can do) and does not retry: the same input under the same limit
 * fails the same way, and ten retries with backoff only delay the verdict by minutes.
 */
function outOfMemory(err: unknown, settings: DuckDbOptions): NonRetryableTaskError | undefined {
  const message = err instanceof Error ? err.message : '';
  // Only DuckDB's own limit ("… (34.1 MiB/61.0 MiB used)"); a failed allocation of the system's may pass, and retries.
  if (!message.startsWith('Out of Memory Error') || !/\/[^)]* used\)/.test(message)) return undefined;
  const said = message.split('\n')[0]!.replace(/^Out of Memory Error: /, '');
  const limit = settings.memoryLimit ?? DEFAULT_DUCKDB_MEMORY_LIMIT;
  return new NonRetryableTaskError(
    `DuckDB needs more memory than its limit of ${limit} per task: raise TEMPOFLOW_DUCKDB_MEMORY_LIMIT ` +
      `(--duckdb-memory-limit), or give it fewer threads (TEMPOFLOW_DUCKDB_THREADS) [DuckDB: ${said}]`,
    'DuckDbOutOfMemory',
  );
}

async function openDuckDb<T>(
  settings: DuckDbOptions,
  scratchDir: string,
  fn: (conn: DuckDBConnection) => Promise<T>,
  signal: AbortSignal | undefined,
  opts: { preserveOrder?: boolean },
): Promise<T> {
  // Each instance spills into its own directory: several calls may run at once on one worker.
  let tempDirectory = path.join(scratchDir, 'duckdb-spill');
  if (settings.tempDirectory) {
    await mkdir(settings.tempDirectory, { recursive: true });
    tempDirectory = await mkdtemp(path.join(settings.tempDirectory, 'call-'));
  } else {
    await mkdir(tempDirectory, { recursive: true });
  }
  // A database file in the call's scratch directory (not ':memory:'): its tables can be evicted to disk, so
  // inputs larger than memory_limit work.
  // Loaded here, not at the top: the CLI reads this module's defaults and must not load DuckDB's native code.
  const { DuckDBInstance } = await import('@duckdb/node-api');
  const instance = await DuckDBInstance.create(path.join(scratchDir, `work-${process.hrtime.bigint()}.duckdb`), {
    memory_limit: settings.memoryLimit ?? DEFAULT_DUCKDB_MEMORY_LIMIT,
    threads: String(settings.threads ?? defaultDuckDbThreads()),
    temp_directory: tempDirectory,
    // Sorted inputs stay sorted in outputs (the same input gives the same files). Readers that do not need
    // it turn it off: keeping the order of thousands of files at once costs memory per file.
    preserve_insertion_order: String(opts.preserveOrder ?? true),
  });
  const conn = await instance.connect();
  const onAbort = () => conn.interrupt();
  signal?.addEventListener('abort', onAbort);
  try {
    signal?.throwIfAborted();
    return await fn(conn);
  } catch (err) {
    throw outOfMemory(err, settings) ?? err;
  } finally {
    signal?.removeEventListener('abort', onAbort);
    conn.closeSync();
    instance.closeSync();
    if (settings.tempDirectory) await rm(tempDirectory, { recursive: true, force: true });
  }
}
