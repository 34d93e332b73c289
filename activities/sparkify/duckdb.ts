import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';

/** Resources one DuckDB instance may use; memory beyond the limit spills to `tempDirectory`. */
export interface DuckDbSettings {
  /** e.g. `'2GB'`. Default `'1GB'`. */
  memoryLimit?: string;
  /** Default 2. */
  threads?: number;
  /** Spill directory. Default a fresh directory under the OS temp dir. */
  tempDirectory?: string;
  /** Where activities put downloaded inputs and files to upload. Default the OS temp dir. */
  workDirectory?: string;
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

/** Opens an in-memory DuckDB with the given limits for one call, and always closes it. */
export async function withDuckDb<T>(
  settings: DuckDbSettings,
  scratchDir: string,
  fn: (conn: DuckDBConnection) => Promise<T>,
  signal?: AbortSignal,
): Promise<T> {
  // Each instance spills into its own directory: several calls may run at once on one worker.
  let tempDirectory = path.join(scratchDir, 'duckdb-spill');
  if (settings.tempDirectory) {
    await mkdir(settings.tempDirectory, { recursive: true });
    tempDirectory = await mkdtemp(path.join(settings.tempDirectory, 'call-'));
  } else {
    await mkdir(tempDirectory, { recursive: true });
  }
  const instance = await DuckDBInstance.create(':memory:', {
    memory_limit: settings.memoryLimit ?? '1GB',
    threads: String(settings.threads ?? 2),
    temp_directory: tempDirectory,
    // Sorted inputs stay sorted in outputs: the same input gives the same files.
    preserve_insertion_order: 'true',
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

/** A SQL string literal (paths and the like). */
export function sqlString(s: string): string {
  return `'${s.replace(/'/g, "''")}'`;
}
