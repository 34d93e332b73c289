/**
 * Removes the work areas (`_staging/<run>/`) that runs which never published left in a lake: a failed or
 * cancelled run keeps its staging so `tempoflow runs retry` can reuse it, so nothing else ever deletes it. As
 * Delta Lake's VACUUM, by age: an area whose newest file is older than the retention goes.
 *
 * Safe beside running runs: it holds the lake's lease (no publish runs meanwhile), keeps any area an interrupted
 * publish's journal may still need, and keeps every area written to within the retention. A run whose area was
 * removed and is retried later fails with a clear error (publish refuses a run with nothing staged; validate's
 * staged-versus-reported counts catch a build that found parts missing); it never publishes less.
 */
import { randomBytes } from 'node:crypto';
import { acquireLease, type LeaseOptions } from '../../storage/lease';
import type { ObjectInfo, Store } from '../../storage/store';
import { joinUri } from '../../storage/uri';
import { journalPaths } from './lake-files';
import { lakeStatePaths } from './paths';

export interface VacuumArgs {
  store: Store;
  lake: string;
  /** Areas with a file newer than this many milliseconds are kept. */
  retainMs: number;
  /** List what would go; remove nothing. */
  dryRun?: boolean;
  /** For tests: the time to measure ages from. */
  now?: number;
  lease?: LeaseOptions;
}

export interface StagingArea {
  /** The folder under `_staging/` (the run id as a path segment). */
  run: string;
  files: number;
  bytes: number;
  /** The newest file's time, ISO 8601. */
  newest: string;
  action: 'removed' | 'would remove' | 'kept: recent' | 'kept: publish in progress';
}

export interface VacuumResult {
  lake: string;
  retainMs: number;
  areas: StagingArea[];
  removedFiles: number;
  removedBytes: number;
}

export async function vacuumStaging(args: VacuumArgs): Promise<VacuumResult> {
  const { store, lake } = args;
  const now = args.now ?? Date.now();
  // Nothing to remove: no lease taken (on a mistyped local path, taking it would create a lake there).
  if ((await store.list(joinUri(lake, '_staging'))).length === 0) {
    return { lake, retainMs: args.retainMs, areas: [], removedFiles: 0, removedBytes: 0 };
  }
  const owner = `vacuum#${randomBytes(4).toString('hex')}`;
  const lease = await acquireLease(store, lakeStatePaths(lake).lease, owner, args.lease);
  try {
    const journals = new Set(
      (await store.list(journalPaths(lake, '').dir))
        .filter((o) => o.key.endsWith('.json') && !o.key.includes('/'))
        .map((o) => o.key.slice(0, -'.json'.length)),
    );
    // An area can hold ~100,000 files (a local lake's song layout at the large scale): grouped in one pass.
    const byRun = new Map<string, ObjectInfo[]>();
    for (const o of await store.list(joinUri(lake, '_staging'))) {
      const run = o.key.split('/')[0]!;
      const area = byRun.get(run);
      if (area) area.push(o);
      else byRun.set(run, [o]);
    }
    const areas: StagingArea[] = [];
    let removedFiles = 0;
    let removedBytes = 0;
    for (const [run, objects] of [...byRun].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
      const newest = objects.reduce((a, o) => Math.max(a, o.modifiedMs), 0);
      const bytes = objects.reduce((a, o) => a + o.size, 0);
      let action: StagingArea['action'];
      if (journals.has(run)) action = 'kept: publish in progress';
      else if (now - newest < args.retainMs) action = 'kept: recent';
      else if (args.dryRun) action = 'would remove';
      else {
        // Renewed and checked before each area: an expired lease means a publish may be running now.
        await lease.renew();
        await store.deletePrefix(joinUri(lake, '_staging', run));
        removedFiles += objects.length;
        removedBytes += bytes;
        action = 'removed';
      }
      areas.push({ run, files: objects.length, bytes, newest: new Date(newest).toISOString(), action });
    }
    return { lake, retainMs: args.retainMs, areas, removedFiles, removedBytes };
  } finally {
    await lease.release().catch(() => undefined);
  }
}
