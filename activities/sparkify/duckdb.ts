import { mkdir, mkdtemp, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';
import { InputDataError } from './errors';

/*
 * Defaults for plain calls (tests, bench, readTable): the same as a worker's, which always passes its own
 * (worker/settings.ts, DEFAULT_DUCKDB_MEMORY_LIMIT and defaultDuckDbThreads, explains the sizing). Application code
 * does not import the framework's worker, so they are restated here; keep the two in step.
 */
export const DEFAULT_DUCKDB_MEMORY_LIMIT = '2GB';
export const DEFAULT_DUCKDB_INSTANCES = 2;
export const defaultDuckDbThreads = (): number => Math.max(1, os.availableParallelism());

/** Resources one DuckDB instance may use; memory beyond the limit spills to `tempDirectory`. */
export interface DuckDbSettings {
  /** e.g. `'2GB'`. Default DEFAULT_DUCKDB_MEMORY_LIMIT. */
  memoryLimit?: string;
  /** Default the machine's cores (defaultDuckDbThreads). */
  threads?: number;
  /** Spill directory. Default a fresh directory under the OS temp dir. */
  tempDirectory?: string;
  /** Where activities put downloaded inputs and files to upload. Default the OS temp dir. */
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
  settings: DuckDbSettings,
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
  settings: DuckDbSettings,
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

async function openDuckDb<T>(
  settings: DuckDbSettings,
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
  } finally {
    signal?.removeEventListener('abort', onAbort);
    conn.closeSync();
    instance.closeSync();
    if (settings.tempDirectory) await rm(tempDirectory, { recursive: true, force: true });
  }
}

/** Bytes in a DuckDB size such as `'2GB'`, `'512MiB'`, `'1.5 GB'`; undefined when it cannot be read. */
export function parseSize(size: string): number | undefined {
  const m = /^\s*([\d.]+)\s*([KMGT]?)(i?)B?\s*$/i.exec(size);
  if (!m) return undefined;
  const unit = { '': 0, K: 1, M: 2, G: 3, T: 4 }[(m[2] ?? '').toUpperCase() as '' | 'K' | 'M' | 'G' | 'T'];
  const base = m[3] ? 1024 : 1000;
  return Number(m[1]) * base ** unit;
}

/** A SQL string literal (paths and the like). */
export function sqlString(s: string): string {
  return `'${s.replace(/'/g, "''")}'`;
}

/**
 * DuckDB expands every path it reads (`read_parquet`, `read_json`, each element of a list too) as a glob: `*`,
 * `?` and `[` are patterns, so `/data/lake[1]/x.parquet` would read `/data/lake1/x.parquet`. A path without them
 * is read as is; in one with them each becomes a one-character class (`[[]`, `[*]`, `[?]`), which matches only
 * itself. DuckDB's globbing also splits on `\`, so a path with both a backslash and a glob character cannot be
 * read literally: refused, naming it.
 */
export function literalGlob(file: string): string {
  if (!/[*?[]/.test(file)) return file;
  if (file.includes('\\')) {
    throw new InputDataError(
      `DuckDB cannot read '${file}': a path with a backslash and one of * ? [ is always read as a pattern; rename the folder`,
    );
  }
  return file.replace(/[*?[]/g, (c) => `[${c}]`);
}

/** One file as a SQL string DuckDB reads literally (see `literalGlob`). */
export function sqlFilePath(file: string): string {
  return sqlString(literalGlob(file));
}

/** Files as a SQL list DuckDB reads literally, e.g. `read_parquet(${sqlFileList(files)})`; at least one file. */
export function sqlFileList(files: readonly string[]): string {
  if (files.length === 0) throw new Error('sqlFileList: DuckDB cannot read an empty list of files');
  return `[${files.map(sqlFilePath).join(', ')}]`;
}

/** The visible `*.parquet` files under a local directory (recursively, sorted; none when it does not exist). */
export async function parquetFilesUnder(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true }).catch(() => [] as string[]);
  return entries
    .filter((f) => f.endsWith('.parquet') && !f.split(path.sep).some((s) => s.startsWith('_') || s.startsWith('.')))
    .sort()
    .map((f) => path.join(dir, f));
}
