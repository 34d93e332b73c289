import { readdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { mapLimit } from '../storage/concurrency';
import { mirrorPrefix } from '../storage/mirror';
import type { Store } from '../storage/store';
import { isS3Uri, joinUri, parseUri } from '../storage/uri';
import type { DataInterval } from '../../core/types';
import { LAID_OUT_AT_PUBLISH, limitPartitionBuffers, writeTable } from './build-tables';
import { type DuckDbSettings, sqlString, withDuckDb, withScratch } from './duckdb';
import { mergeIntoLake } from './merge';
import { runCache } from './run-cache';
import { type LayoutName, SONG_TABLES, TABLES, type TableName, lakeStatePaths, runPaths, runToken } from './paths';
import { type SongState, assertSongsStillPublished, readSongInput } from './song-state';

export interface PublishArgs {
  store: Store;
  output: string;
  runId: string;
  /** An interval run merges its rows into the published lake first (see merge.ts). */
  dataInterval?: DataInterval | null;
  duckdb?: DuckDbSettings;
  signal?: AbortSignal;
}

export interface PublishResult {
  /** Files per table after the publish (songs and artists are absent when the published ones are kept). */
  files: Partial<Record<TableName, number>>;
  /** Tables this call swapped in (a resumed publish skips those already done). */
  swapped: LayoutName[];
  /** For an interval run merged into the lake: the `songplays`/`time` partitions replaced (the rest is untouched). */
  partitions?: string[];
}

/** Marker written into each published table directory: which run produced it and its files. */
export const RUN_MARKER = '_run.json';

interface Marker {
  runId: string;
  files: string[];
}

async function readMarker(store: Store, tableUri: string): Promise<Marker | undefined> {
  const uri = joinUri(tableUri, RUN_MARKER);
  if (!(await store.exists(uri))) return undefined;
  return JSON.parse((await store.read(uri)).toString('utf8')) as Marker;
}

/**
 * Replaces the published tables `<output>/{songs,artists,users,time,songplays}/` and the lake state
 * `_state/user_days/` with the run's staged ones, then deletes the run's `_staging/<run>/`. Songs and artists
 * are replaced only when the run built them (then their lookup and song state go to `_state/` too). An interval
 * run is first merged into the lake (merge.ts), and only the `songplays` and `time` partitions it touches are
 * replaced.
 *
 * Guarantees:
 * - Nothing published changes before every staged table exists (build and validate run first).
 * - Local directories: each table (or partition) is swapped by two directory renames (old to `_trash/<run>/`,
 *   staged into place). If a rename fails, the swaps done so far are undone and the previous lake is restored.
 *   Readers can see a table missing for the instant between the two renames of that table.
 * - S3 (no rename, no multi-object transaction): every new file is copied first under new keys (file names carry
 *   the run's token, so they never overwrite the old files); if a copy fails the new keys are deleted and the old
 *   lake is as it was. Only then are the old files deleted. Between the copy and the delete a reader listing a
 *   table sees old and new files; `<table>/_run.json` names the current files for readers who need a consistent
 *   snapshot.
 * - A publish interrupted by a crash can be run again: tables whose marker already names this run are skipped.
 */
export async function publish(args: PublishArgs): Promise<PublishResult> {
  const { store, output, runId } = args;
  const merge = args.dataInterval
    ? await mergeIntoLake({
        store,
        output,
        runId,
        dataInterval: args.dataInterval,
        duckdb: args.duckdb,
        signal: args.signal,
      })
    : null;
  const paths = runPaths(output, runId);
  const lake = lakeStatePaths(output);
  const songInput = await readSongInput(store, output, runId);
  await assertSongsStillPublished(store, output, songInput);
  const tables = songInput.reusedFrom ? TABLES.filter((t) => !SONG_TABLES.includes(t)) : TABLES;
  const files: Partial<Record<TableName, number>> = {};
  const units: SwapUnit[] = [];
  const stagedAt = async (t: TableName) =>
    LAID_OUT_AT_PUBLISH.includes(t) ? await layOut(args, t) : joinUri(paths.tables, t);
  const sources: [LayoutName, string, string][] = [
    ...(await Promise.all(
      tables.map(async (t): Promise<[LayoutName, string, string]> => [t, joinUri(output, t), await stagedAt(t)]),
    )),
    ['user_days', lake.userDays, joinUri(paths.state, 'user_days')],
  ];
  for (const [name, target, builtAt] of sources) {
    const merged = merge && !SONG_TABLES.includes(name as TableName);
    const staged = merged ? joinUri(merge.merged, name) : builtAt;
    const dirs = merged && (name === 'songplays' || name === 'time') ? merge.partitions : [''];
    const keys = (await store.list(staged)).map((o) => o.key).filter((k) => k !== RUN_MARKER);
    const current = await readMarker(store, target);
    if (!merged && keys.length === 0 && current?.runId === runId) {
      if (name !== 'user_days') files[name] = current.files.length; // published by an earlier attempt
      continue;
    }
    const kept = dirs.includes('')
      ? []
      : (await store.list(target)).map((o) => o.key).filter((k) => k !== RUN_MARKER && !inDirs(k, dirs));
    const marker: Marker = { runId, files: [...kept, ...keys].sort() };
    if (name !== 'user_days') files[name] = marker.files.length;
    units.push({ name, staged, target, dirs, keys, marker, previousMarker: current });
  }
  args.signal?.throwIfAborted();

  if (isS3Uri(output)) await swapS3(store, units);
  else await swapLocal(store, units, paths.trash);
  if (!songInput.reusedFrom && songInput.fingerprint) {
    // After the songs swap: a state naming this run's songs only ever describes songs that are published.
    await store.copy(paths.songLookup, lake.songLookup);
    const songState: SongState = { fingerprint: songInput.fingerprint, files: songInput.files, runId };
    await store.write(lake.songs, JSON.stringify(songState, null, 2) + '\n');
  }

  await store.deletePrefix(paths.trash);
  await store.deletePrefix(paths.staging);
  const cache = runCache(args.duckdb ?? {}, runId);
  await cache.drop();
  await cache.prune();
  return { files, swapped: units.map((u) => u.name), ...(merge ? { partitions: merge.partitions } : {}) };
}

/**
 * Writes a table build staged as one sorted file (see LAID_OUT_AT_PUBLISH) in its partitioned lake layout, into
 * a local directory publish copies from: beside the staging area for a local output (so it can be renamed into
 * place), in the worker's run cache for S3. Returns that directory; it is empty when the staged file is gone
 * because an earlier attempt of this publish finished.
 */
async function layOut(args: PublishArgs, table: TableName): Promise<string> {
  const settings = args.duckdb ?? {};
  const paths = runPaths(args.output, args.runId);
  const cache = runCache(settings, args.runId);
  const staged = await mirrorPrefix(args.store, joinUri(paths.tables, table), cache.at('tables', table), {
    signal: args.signal,
  });
  const beside = parseUri(joinUri(paths.staging, 'layout', table));
  const dir = beside.kind === 'local' ? beside.path : cache.at('layout', table);
  await rm(dir, { recursive: true, force: true });
  const parts = (await readdir(staged).catch(() => [] as string[])).filter((f) => f.endsWith('.parquet'));
  if (parts.length === 0) return dir;
  await withScratch(settings, 'publish', (scratch) =>
    withDuckDb(
      settings,
      scratch,
      async (conn) => {
        await conn.run(
          `CREATE VIEW "${table}" AS SELECT * FROM read_parquet(${sqlString(path.join(staged, '*.parquet'))})`,
        );
        await limitPartitionBuffers(conn, settings);
        await writeTable(conn, table, dir, runToken(args.runId));
      },
      args.signal,
    ),
  );
  return dir;
}

/** One table (or state) to replace: its whole directory (`dirs` = ['']) or some partitions of it. */
interface SwapUnit {
  name: LayoutName;
  staged: string;
  target: string;
  dirs: string[];
  /** New files, relative to `staged` (and to `target` once published). */
  keys: string[];
  marker: Marker;
  previousMarker: Marker | undefined;
}

function inDirs(key: string, dirs: readonly string[]): boolean {
  return dirs.some((d) => d === '' || key.startsWith(`${d}/`));
}

const markerJson = (m: Marker) => JSON.stringify(m, null, 2) + '\n';

async function swapLocal(store: Store, units: SwapUnit[], trash: string) {
  const undo: (() => Promise<unknown>)[] = [];
  try {
    for (const u of units) {
      for (const d of u.dirs) {
        const [from, to, old] = [joinUri(u.staged, d), joinUri(u.target, d), joinUri(trash, u.name, d)];
        if (await store.exists(to)) {
          await store.renamePrefix(to, old);
          undo.push(() => store.renamePrefix(old, to));
        }
        if (await store.exists(from)) {
          await store.renamePrefix(from, to);
          undo.push(() => store.renamePrefix(to, from));
        }
      }
      const markerUri = joinUri(u.target, RUN_MARKER);
      const previous = u.previousMarker;
      await store.write(markerUri, markerJson(u.marker));
      undo.push(() => (previous ? store.write(markerUri, markerJson(previous)) : store.delete(markerUri)));
    }
  } catch (err) {
    for (const step of undo.reverse()) await step();
    throw err;
  }
}

async function swapS3(store: Store, units: SwapUnit[]) {
  const copies = units.flatMap((u) =>
    u.keys.map((key) => ({ from: joinUri(u.staged, key), to: joinUri(u.target, key) })),
  );
  const copied: string[] = [];
  try {
    // Files first, markers last: a marker is what says a table is this run's.
    await mapLimit(copies, 32, async (c) => {
      await store.copy(c.from, c.to);
      copied.push(c.to);
    });
  } catch (err) {
    await mapLimit(copied, 16, (uri) => store.delete(uri));
    throw err;
  }
  for (const u of units) {
    await store.write(joinUri(u.target, RUN_MARKER), markerJson(u.marker));
    const keep = new Set(u.keys);
    const stale = (await store.list(u.target)).filter(
      (o) => o.key !== RUN_MARKER && !keep.has(o.key) && inDirs(o.key, u.dirs),
    );
    await mapLimit(stale, 16, (o) => store.delete(o.uri));
  }
}
