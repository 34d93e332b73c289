import { mapLimit } from '../storage/concurrency';
import type { Store } from '../storage/store';
import { isS3Uri, joinUri } from '../storage/uri';
import type { DataInterval } from '../../core/types';
import type { DuckDbSettings } from './duckdb';
import { mergeIntoLake } from './merge';
import { SONG_TABLES, TABLES, type TableName, lakeStatePaths, runPaths } from './paths';
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
  /** Files published per table (songs and artists are absent when the published ones are kept). */
  files: Partial<Record<TableName, number>>;
  /** Tables this call swapped in (a resumed publish skips those already done). */
  swapped: TableName[];
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
 * Replaces the published tables `<output>/{songs,artists,users,time,songplays}/` with the run's staged ones
 * (songs and artists only when the run built them; then their lookup and song state go to `_state/`), then
 * deletes the run's `_staging/<run>/`.
 *
 * Guarantees:
 * - Nothing published changes before every staged table exists (build and validate run first).
 * - Local directories: each table is swapped by two directory renames (old to `_trash/<run>/`, staged into
 *   place). If a rename fails, the swaps done so far are undone and the previous lake is restored. Readers can
 *   see a table missing for the instant between the two renames of that table.
 * - S3 (no rename, no multi-object transaction): every new file is copied first under new keys (file names carry
 *   the run's token, so they never overwrite the old files); if a copy fails the new keys are deleted and the old
 *   lake is as it was. Only then are the old files deleted. Between the copy and the delete a reader listing a
 *   table sees old and new files; `<table>/_run.json` names the current run's files for readers who need a
 *   consistent snapshot.
 * - A publish interrupted by a crash can be run again: tables whose marker already names this run are skipped.
 */
export async function publish(args: PublishArgs): Promise<PublishResult> {
  const { store, output, runId } = args;
  if (args.dataInterval) {
    await mergeIntoLake({
      store,
      output,
      runId,
      dataInterval: args.dataInterval,
      duckdb: args.duckdb,
      signal: args.signal,
    });
  }
  const paths = runPaths(output, runId);
  const songInput = await readSongInput(store, output, runId);
  await assertSongsStillPublished(store, output, songInput);
  const tables = songInput.reusedFrom ? TABLES.filter((t) => !SONG_TABLES.includes(t)) : TABLES;
  const files: Partial<Record<TableName, number>> = {};
  const todo: { table: TableName; staged: string; target: string; keys: string[] }[] = [];
  for (const table of tables) {
    const staged = joinUri(paths.tables, table);
    const target = joinUri(output, table);
    const keys = (await store.list(staged)).map((o) => o.key).filter((k) => k !== RUN_MARKER);
    if (keys.length === 0) {
      const marker = await readMarker(store, target);
      if (marker?.runId === runId) {
        files[table] = marker.files.length; // published by an earlier attempt of this publish
        continue;
      }
    }
    files[table] = keys.length;
    const marker: Marker = { runId, files: keys };
    await store.write(joinUri(staged, RUN_MARKER), JSON.stringify(marker, null, 2) + '\n');
    todo.push({ table, staged, target, keys });
  }
  args.signal?.throwIfAborted();

  if (isS3Uri(output)) await swapS3(store, todo);
  else await swapLocal(store, todo, paths.trash);
  if (!songInput.reusedFrom && songInput.fingerprint) {
    // After the songs swap: a state naming this run's songs only ever describes songs that are published.
    const state = lakeStatePaths(output);
    await store.copy(paths.songLookup, state.songLookup);
    const songState: SongState = { fingerprint: songInput.fingerprint, files: songInput.files, runId };
    await store.write(state.songs, JSON.stringify(songState, null, 2) + '\n');
  }

  await store.deletePrefix(paths.trash);
  await store.deletePrefix(paths.staging);
  return { files, swapped: todo.map((t) => t.table) };
}

async function swapLocal(store: Store, todo: { staged: string; target: string; table: TableName }[], trash: string) {
  const undo: (() => Promise<unknown>)[] = [];
  try {
    for (const t of todo) {
      const old = joinUri(trash, t.table);
      if (await store.exists(t.target)) {
        await store.renamePrefix(t.target, old);
        undo.push(() => store.renamePrefix(old, t.target));
      }
      await store.renamePrefix(t.staged, t.target);
      undo.push(() => store.renamePrefix(t.target, t.staged));
    }
  } catch (err) {
    for (const step of undo.reverse()) await step();
    throw err;
  }
}

async function swapS3(store: Store, todo: { staged: string; target: string; keys: string[] }[]) {
  const copies = todo.flatMap((t) =>
    t.keys.map((key) => ({ from: joinUri(t.staged, key), to: joinUri(t.target, key) })),
  );
  const copied: string[] = [];
  try {
    // Files first, markers last: a marker is what says a table is this run's.
    await mapLimit(copies, 16, async (c) => {
      await store.copy(c.from, c.to);
      copied.push(c.to);
    });
  } catch (err) {
    await mapLimit(copied, 16, (uri) => store.delete(uri));
    throw err;
  }
  for (const t of todo) {
    await store.copy(joinUri(t.staged, RUN_MARKER), joinUri(t.target, RUN_MARKER));
    const keep = new Set([...t.keys, RUN_MARKER]);
    const stale = (await store.list(t.target)).filter((o) => !keep.has(o.key));
    await mapLimit(stale, 16, (o) => store.delete(o.uri));
  }
}
