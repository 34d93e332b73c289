import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { DuckDbOptions } from '../../worker/duckdb';
import { runSegment } from './paths';

const MAX_AGE_MS = 24 * 3600 * 1000;

/**
 * A worker-local directory per run where activities keep the files they wrote to (or read from) the run's
 * staging area, so the next task on the same worker finds them instead of downloading them again (see
 * `mirrorPrefix`: every kept file is checked against the object's ETag). Only an optimisation: a task on another
 * worker downloads. Publish drops the run's cache; caches of runs that never published are pruned after a day.
 */
export function runCache(settings: DuckDbOptions, runId: string) {
  const root = path.join(settings.workDirectory ?? os.tmpdir(), 'tempoflow-cache');
  const dir = path.join(root, runSegment(runId));
  return {
    /** The local directory mirroring one part of the run's staging area, e.g. `at('tables')`. */
    at: (...parts: string[]) => path.join(dir, ...parts),
    drop: () => fs.rm(dir, { recursive: true, force: true }),
    /** Removes other runs' caches untouched for a day. */
    async prune(): Promise<void> {
      const entries = await fs.readdir(root, { withFileTypes: true }).catch(() => []);
      for (const e of entries) {
        const p = path.join(root, e.name);
        const st = await fs.stat(p).catch(() => undefined);
        if (st && Date.now() - st.mtimeMs > MAX_AGE_MS) await fs.rm(p, { recursive: true, force: true });
      }
    },
  };
}
