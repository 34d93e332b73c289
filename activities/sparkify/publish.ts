import { randomBytes } from 'node:crypto';
import { mkdir, readdir, rm, rmdir } from 'node:fs/promises';
import path from 'node:path';
import { mapLimit } from '../../storage/concurrency';
import { type Lease, type LeaseOptions, LeaseLostError, acquireLease } from '../../storage/lease';
import { mirrorPrefix } from '../../storage/mirror';
import type { Store } from '../../storage/store';
import { baseName, joinUri, parseUri } from '../../storage/uri';
import type { DataInterval } from '../../core/types';
import { LAID_OUT_AT_PUBLISH, limitPartitionBuffers, writeTable } from './build-tables';
import {
  DEFAULT_DUCKDB_INSTANCES,
  type DuckDbOptions,
  defaultDuckDbThreads,
  withDuckDb,
  withScratch,
} from '../../worker/duckdb';
import { sqlFileList } from './duckdb';
import { tableSpec } from './catalog';
import { InputDataError } from './errors';
import { RUN_MARKER, type TableMarker, journalPaths, publishedFiles, readJsonIfExists } from './lake-files';
import { mergeIntoLake } from './merge';
import {
  type LayoutName,
  type OnProgress,
  SONG_TABLES,
  TABLES,
  type TableName,
  lakeStatePaths,
  runPaths,
  runToken,
} from './paths';
import { runCache } from './run-cache';
import { type SongInput, type SongState, assertSongsStillPublished } from './song-state';

export { RUN_MARKER } from './lake-files';

export interface PublishArgs {
  store: Store;
  output: string;
  runId: string;
  /** An interval run merges its rows into the published lake first (see merge.ts). */
  dataInterval?: DataInterval | null;
  duckdb?: DuckDbOptions;
  onProgress?: OnProgress;
  signal?: AbortSignal;
  /** Timing of the lake's lease (tests shorten it). */
  lease?: LeaseOptions;
}

export interface PublishResult {
  /** Files per table after the publish (songs and artists are absent when the published ones are kept). */
  files: Partial<Record<TableName, number>>;
  /** Tables (and lake state) this publish replaced. */
  swapped: LayoutName[];
  /** For an interval run merged into the lake: the `songplays`/`time` partitions replaced (the rest is untouched). */
  partitions?: string[];
  /** Interrupted publishes of other runs found in the lake and finished (or undone) first. */
  recovered?: string[];
  /** The lake's lease was taken over from a holder that let it expire (a worker that died mid-publish). */
  leaseTakenOver?: { owner: string; expiredAt: string };
}

/**
 * The publish journal (`_state/publish/<run>.json`): the whole plan of one publish, written before its first
 * change to the lake. Any later holder of the lake's lease finishes it from here alone.
 * - `preparing`: new files are being added under names no reader or other publish uses; undone by deleting them.
 * - `committing`: every new file is in place; finished by writing the markers, then deleting replaced files.
 * - `done` (moved to `_runs/<run>/publish.json`): the record a late attempt answers from, changing nothing.
 */
interface PublishJournal {
  version: 1;
  runId: string;
  /** Unique to this publish: in every new file name, so no two publishes (or attempts) share a key. */
  token: string;
  state: 'preparing' | 'committing' | 'done';
  units: JournalUnit[];
  /** A run that built songs: its song lookup (added as `_state/<lookup>`) and the song state to write. */
  songs?: { lookup: string; state: SongState };
  result: PublishResult;
}

/** One table (or lake state) replaced whole (`dirs` = ['']) or in some partitions. Paths relative to the lake. */
interface JournalUnit {
  name: LayoutName;
  table: string;
  dirs: string[];
  /** New files (relative to `table`), all in `marker.files`. */
  added: string[];
  marker: TableMarker;
}

/** A file to put in place during `preparing`: from staging (or the worker's layout directory) to the lake. */
interface Upload {
  from: string;
  to: string;
  /** `from` is this attempt's own (a layout file, made again by any later attempt): moved, not copied. */
  own?: boolean;
}

const jsonText = (x: unknown) => JSON.stringify(x, null, 2) + '\n';

/**
 * Publishes a run's staged tables into the lake `<output>`, as a crash-safe protocol (docs/sparkify.md):
 *
 * 1. Holds the lake's lease (`_state/lease/`, in the lake itself: one per lake whatever its spelling or the
 *    Temporal server that started the run), renewed while it works; before each phase it checks the lease is
 *    still its own (fencing), so an attempt that lost it stops before changing anything else.
 * 2. Finishes any interrupted publish found in the lake's journals (its own earlier attempt, or another run's).
 * 3. Plans (merging an interval run with the published partitions it touches), writes the journal
 *    (`preparing`), adds every new file under a name unique to this publish, then marks the journal
 *    `committing`.
 * 4. Commits: each table's marker `<table>/_run.json` is replaced in one atomic write (a reader that opens a
 *    table through its marker sees the old files or the new ones, never a mix), then replaced files go.
 * 5. Records the publish as done in `_runs/<run>/publish.json`, and only then removes the run's staging.
 *
 * Any step can fail or the process die at any point; running publish again (any number of times, even two
 * attempts at once: the lease makes them take turns) ends with the lake one uninterrupted publish gives. A late
 * attempt of a finished publish returns the recorded result and changes nothing.
 */
export async function publish(args: PublishArgs): Promise<PublishResult> {
  const { store, output, runId } = args;
  const attempt = randomBytes(4).toString('hex');
  const lease = await acquireLease(store, lakeStatePaths(output).lease, `${runId}#${attempt}`, {
    ...args.lease,
    signal: args.signal,
  });
  const keeper = keepLease(lease, args.lease?.ttlMs, args.signal);
  try {
    const signal = keeper.signal;
    const recovered = await recoverPublishes(store, output, lease, runId);
    const finished = await finishedPublish(store, output, runId);
    if (finished) return finished.result;

    const planned = await plan({ ...args, signal }, attempt);
    if (lease.tookOver) planned.journal.result.leaseTakenOver = lease.tookOver;
    if (recovered.length) planned.journal.result.recovered = recovered;
    await lease.assertHeld();
    await writeJournal(store, output, planned.journal);
    const progress = { filesDone: 0, filesTotal: planned.uploads.length, bytesDone: 0, bytesTotal: 0 };
    try {
      await mapLimit(
        planned.uploads,
        32,
        async (u) => {
          await (u.own ? store.move(u.from, u.to) : store.copy(u.from, u.to));
          progress.filesDone++;
          args.onProgress?.({ ...progress });
        },
        signal,
      );
      await lease.assertHeld();
    } catch (err) {
      // A failure the process lives through: take the added files back now, so even a reader that lists the
      // folders sees the lake as it was. If that fails too, the next holder of the lease undoes it.
      await lease
        .assertHeld()
        .then(() => undo(store, output, planned.journal))
        .catch(() => undefined);
      throw err;
    }
    planned.journal.state = 'committing';
    await writeJournal(store, output, planned.journal);
    await commit(store, output, planned.journal, lease);
    await runCache(args.duckdb ?? {}, runId).drop();
    await runCache(args.duckdb ?? {}, runId).prune();
    return planned.journal.result;
  } finally {
    keeper.stop();
    // A release that fails only delays the next holder until the lease expires.
    await lease.release().catch(() => undefined);
  }
}

/** Renews the lease in the background; if it is lost, the returned signal aborts the publish's work. */
function keepLease(lease: Lease, ttlMs = 120_000, outer?: AbortSignal) {
  const controller = new AbortController();
  const onAbort = () => controller.abort(outer?.reason);
  outer?.addEventListener('abort', onAbort, { once: true });
  const timer = setInterval(
    () => {
      lease.renew().catch((err: unknown) => {
        // A renewal that fails for another reason (an S3 blip) is tried again next time; if the lease runs out
        // meanwhile, the fencing check before the next phase stops the publish.
        if (err instanceof LeaseLostError) controller.abort(err);
      });
    },
    Math.max(200, Math.floor(ttlMs / 4)),
  );
  timer.unref();
  return {
    signal: controller.signal,
    stop() {
      clearInterval(timer);
      outer?.removeEventListener('abort', onAbort);
    },
  };
}

/** The record of this run's finished publish, if there is one. */
async function finishedPublish(store: Store, output: string, runId: string): Promise<PublishJournal | undefined> {
  const done = await readJsonIfExists<PublishJournal>(store, journalPaths(output, runId).done);
  return done?.state === 'done' ? done : undefined;
}

async function writeJournal(store: Store, output: string, journal: PublishJournal): Promise<void> {
  await store.write(journalPaths(output, journal.runId).active, jsonText(journal));
}

/**
 * Finishes every interrupted publish in the lake: a `committing` one is rolled forward, a `preparing` one is
 * undone (its new files were never named by a marker). Call holding the lake's lease. Returns the runs of the
 * journals it handled (other than `ownRunId`).
 */
export async function recoverPublishes(
  store: Store,
  output: string,
  lease: Lease,
  ownRunId?: string,
): Promise<string[]> {
  const dir = journalPaths(output, '').dir;
  const journals = (await store.list(dir)).filter((o) => o.key.endsWith('.json') && !o.key.includes('/'));
  const handled: string[] = [];
  for (const o of journals) {
    const journal = await readJsonIfExists<PublishJournal>(store, o.uri);
    if (!journal) continue;
    await lease.assertHeld();
    if (journal.state === 'preparing') await undo(store, output, journal);
    else await commit(store, output, journal, lease);
    if (journal.runId !== ownRunId) handled.push(journal.runId);
  }
  return handled;
}

/** Undoes a publish that had not finished adding its files: deletes them and its journal. */
async function undo(store: Store, output: string, journal: PublishJournal): Promise<void> {
  const added = journal.units.flatMap((u) => u.added.map((k) => joinUri(output, u.table, k)));
  if (journal.songs) added.push(joinUri(lakeStatePaths(output).dir, journal.songs.lookup));
  await mapLimit(added, 16, (uri) => store.delete(uri));
  await store.delete(journalPaths(output, journal.runId).active);
}

/**
 * Rolls a publish whose new files are all in place forward to done: markers, song state, then the replaced
 * files, then the done record, the run's staging and the journal. Every step is idempotent.
 */
async function commit(store: Store, output: string, journal: PublishJournal, lease: Lease): Promise<void> {
  const lake = lakeStatePaths(output);
  for (const u of journal.units) {
    await store.write(joinUri(output, u.table, RUN_MARKER), jsonText(u.marker));
  }
  if (journal.songs) {
    // After the songs marker: a state naming this run's songs only ever describes songs that are published.
    // Its source goes once the copy is done, so a commit resumed after that finds it gone.
    const lookup = joinUri(lake.dir, journal.songs.lookup);
    if (await store.exists(lookup)) await store.copy(lookup, lake.songLookup);
    await store.write(lake.songs, jsonText(journal.songs.state));
  }
  await lease.assertHeld();
  for (const u of journal.units) {
    const target = joinUri(output, u.table);
    const live = new Set(u.marker.files);
    const stale = (await store.list(target)).filter(
      (o) => o.key !== RUN_MARKER && !live.has(o.key) && inDirs(o.key, u.dirs),
    );
    await mapLimit(stale, 16, (o) => store.delete(o.uri));
    await pruneEmptyDirs(
      target,
      stale.map((o) => o.key),
    );
  }
  if (journal.songs) await store.delete(joinUri(lake.dir, journal.songs.lookup));
  const paths = journalPaths(output, journal.runId);
  await store.write(paths.done, jsonText({ ...journal, state: 'done' }));
  await store.deletePrefix(runPaths(output, journal.runId).staging);
  await store.delete(paths.active);
}

/** Local lakes: partition folders left empty by deleted files go too (S3 has no folders). */
async function pruneEmptyDirs(uri: string, deletedKeys: readonly string[]): Promise<void> {
  const loc = parseUri(uri);
  if (loc.kind !== 'local') return;
  // Each deleted file's folders, deepest first; rmdir refuses a folder that still holds something.
  const dirs = new Set<string>();
  for (const key of deletedKeys) {
    const parts = key.split('/').slice(0, -1);
    for (let n = parts.length; n > 0; n--) dirs.add(parts.slice(0, n).join('/'));
  }
  const deepestFirst = [...dirs].sort((a, b) => b.split('/').length - a.split('/').length);
  for (const dir of deepestFirst) await rmdir(path.join(loc.path, ...dir.split('/'))).catch(() => undefined);
}

function inDirs(key: string, dirs: readonly string[]): boolean {
  return dirs.some((d) => d === '' || key.startsWith(`${d}/`));
}

/** `part-<run token>-<i>.parquet` (as build names files) to `part-<run token>-<attempt>-<i>.parquet`. */
function publishedName(key: string, runTok: string, attempt: string): string {
  const dir = key.includes('/') ? key.slice(0, key.lastIndexOf('/') + 1) : '';
  const file = baseName(key);
  const prefix = `part-${runTok}-`;
  const rest = file.startsWith(prefix) ? file.slice(prefix.length) : file;
  return `${dir}part-${runTok}-${attempt}-${rest}`;
}

/**
 * Plans a publish without changing the lake: merges an interval run, lays out songs, and lists every file to
 * add and each table's new marker. The staged tables must all be there: a run whose staging is gone is refused,
 * never published as empty tables.
 */
async function plan(args: PublishArgs, attempt: string): Promise<{ journal: PublishJournal; uploads: Upload[] }> {
  const { store, output, runId } = args;
  const paths = runPaths(output, runId);
  const lake = lakeStatePaths(output);
  const runTok = runToken(runId);
  // `<run token>-<attempt>`: files keep naming the run that wrote them, and are unique to this publish.
  const token = `${runTok}-${attempt}`;
  // Not readSongInput: its fallback (rebuild songs) is for build; publishing needs the run's own record.
  const songInput = await readJsonIfExists<SongInput>(store, paths.songInput);
  if (!songInput) {
    throw new InputDataError(
      `run ${runId} has nothing staged to publish (${paths.songInput} is missing: its staging area was removed, ` +
        'and no finished publish of it is recorded): run the DAG again',
    );
  }
  await assertSongsStillPublished(store, output, songInput);
  const merge = args.dataInterval
    ? await mergeIntoLake({
        store,
        output,
        runId,
        dataInterval: args.dataInterval,
        duckdb: args.duckdb,
        signal: args.signal,
        token,
      })
    : null;
  const tables: LayoutName[] = [
    ...(songInput.reusedFrom ? TABLES.filter((t) => !SONG_TABLES.includes(t)) : TABLES),
    'user_days',
  ];
  const units: JournalUnit[] = [];
  const uploads: Upload[] = [];
  const files: Partial<Record<TableName, number>> = {};
  for (const name of tables) {
    const table = name === 'user_days' ? '_state/user_days' : name;
    const merged = merge && !SONG_TABLES.includes(name as TableName);
    let sources: string[];
    if (merged) sources = [joinUri(merge.merged, name)];
    else if (LAID_OUT_AT_PUBLISH.includes(name)) sources = await layOut(args, name as TableName, token);
    else sources = [name === 'user_days' ? joinUri(paths.state, 'user_days') : joinUri(paths.tables, name)];
    // A table with no rows may have no files (a partitioned write of nothing writes nothing). Sources never
    // share a key (a layout's shares hold disjoint partitions).
    const sourceFiles = (await mapLimit(sources, 4, (source) => store.list(source)))
      .flat()
      .filter((o) => o.key.endsWith('.parquet'))
      .sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    const dirs = merged && (name === 'songplays' || name === 'time') ? merge.partitions : [''];
    // Merge and layout write final names already; build's files are renamed for this publish.
    const named = merged || LAID_OUT_AT_PUBLISH.includes(name);
    const rename = (key: string) => (named ? key : publishedName(key, runTok, attempt));
    const added = sourceFiles.map((o) => rename(o.key));
    const own = !merged && LAID_OUT_AT_PUBLISH.includes(name);
    for (const o of sourceFiles) uploads.push({ from: o.uri, to: joinUri(output, table, rename(o.key)), own });
    const kept = dirs.includes('')
      ? []
      : (await publishedFiles(store, joinUri(output, table))).map((o) => o.key).filter((k) => !inDirs(k, dirs));
    const marker: TableMarker = { runId, files: [...kept, ...added].sort() };
    if (name !== 'user_days') files[name] = marker.files.length;
    units.push({ name, table, dirs, added, marker });
  }
  let songs: PublishJournal['songs'];
  if (!songInput.reusedFrom && songInput.fingerprint) {
    const lookup = `song_lookup-${token}.parquet`;
    uploads.push({ from: paths.songLookup, to: joinUri(lake.dir, lookup) });
    songs = { lookup, state: { fingerprint: songInput.fingerprint, files: songInput.files, runId } };
  }
  const result: PublishResult = {
    files,
    swapped: units.map((u) => u.name),
    ...(merge ? { partitions: merge.partitions } : {}),
  };
  return { journal: { version: 1, runId, token, state: 'preparing', units, songs, result }, uploads };
}

/**
 * Writes a table build staged as one sorted file (see LAID_OUT_AT_PUBLISH) in its partitioned lake layout, into
 * local directories publish moves the files from: under the run's staging area for a local output, in the
 * worker's run cache for S3. Returns those directories (each holds its own partitions).
 */
async function layOut(args: PublishArgs, table: TableName, token: string): Promise<string[]> {
  const settings = args.duckdb ?? {};
  const paths = runPaths(args.output, args.runId);
  const cache = runCache(settings, args.runId);
  const stagedUri = joinUri(paths.tables, table);
  if (!(await args.store.list(stagedUri)).some((o) => o.key.endsWith('.parquet'))) {
    throw new InputDataError(`run ${args.runId} has no staged ${table} table under ${stagedUri}: run the DAG again`);
  }
  const staged = await mirrorPrefix(args.store, stagedUri, cache.at('tables', table), { signal: args.signal });
  const beside = parseUri(joinUri(paths.staging, `layout-${token}`, table));
  const dir = beside.kind === 'local' ? beside.path : cache.at(`layout-${token}`, table);
  await rm(dir, { recursive: true, force: true });
  const parts = (await readdir(staged)).filter((f) => f.endsWith('.parquet'));
  // A partitioned write uses one thread (writeTable), and thousands of small files make it CPU-bound: each of
  // `shares` DuckDB instances (no more than may be open at once) writes the partitions whose key hashes to it,
  // into a folder of its own (DuckDB refuses to write into a folder that has files). Each partition is written
  // whole by one instance, so the files are the ones a single write makes.
  const shares = Math.max(
    1,
    Math.min(4, settings.threads ?? defaultDuckDbThreads(), settings.instances ?? DEFAULT_DUCKDB_INSTANCES),
  );
  const partitionBy = tableSpec(table).partitionBy;
  const key = partitionBy.map((c) => `"${c}"`).join(', ');
  const shareDirs = Array.from({ length: shares }, (_, share) => path.join(dir, `share-${share}`));
  // mapLimit: a failing share fails the layout only once the others have stopped writing.
  await withScratch(settings, 'publish', (scratch) =>
    mapLimit(shareDirs, shares, async (shareDir, share) => {
      const own = path.join(scratch, `share-${share}`);
      await mkdir(own, { recursive: true });
      await withDuckDb(
        { ...settings, threads: 1 },
        own,
        async (conn) => {
          const list = sqlFileList(parts.map((f) => path.join(staged, f)));
          const mine = shares > 1 ? ` WHERE hash(${key}) % ${shares} = ${share}` : '';
          await conn.run(`CREATE VIEW "${table}" AS SELECT * FROM read_parquet(${list})${mine}`);
          await limitPartitionBuffers(conn, settings);
          await writeTable(conn, table, shareDir, token);
        },
        args.signal,
      );
    }),
  );
  return shareDirs;
}

/**
 * A fresh start for a new execution of a run (called by its first task): an interrupted publish of an earlier
 * execution is finished first, under the lake's lease; then that execution's staging, rejects and publish record
 * go, so nothing of it is counted or published again.
 */
export async function startRunAfresh(
  store: Store,
  output: string,
  runId: string,
  opts: { lease?: LeaseOptions; signal?: AbortSignal } = {},
): Promise<void> {
  const journal = journalPaths(output, runId);
  if (await store.exists(journal.active)) {
    const lease = await acquireLease(store, lakeStatePaths(output).lease, `${runId}#start`, {
      ...opts.lease,
      signal: opts.signal,
    });
    try {
      await recoverPublishes(store, output, lease);
    } finally {
      await lease.release().catch(() => undefined);
    }
  }
  await store.delete(journal.done);
  await store.deletePrefix(runPaths(output, runId).staging);
  await store.deletePrefix(runPaths(output, runId).rejects);
}
