import { mkdir, readdir, rename, rm, cp } from 'node:fs/promises';
import path from 'node:path';
import type { DuckDBConnection } from '@duckdb/node-api';
import { mirrorPrefix } from '../../storage/mirror';
import { joinUri } from '../../storage/uri';
import {
  LAID_OUT_AT_PUBLISH,
  PLAY_MODEL_SQL,
  SONG_MODEL_SQL,
  USERS_FROM_USER_DAYS,
  type BuildTablesArgs,
  type BuildTablesResult,
  limitPartitionBuffers,
  loadStaged,
  writeTable,
} from './build-tables';
import { type DuckDbOptions, withDuckDb, withScratch } from '../../worker/duckdb';
import { parquetFilesUnder, sqlFileList, sqlFilePath, sqlString } from './duckdb';
import { type LayoutName, SONG_TABLES, type TableName, lakeStatePaths, runPaths, runToken } from './paths';
import { runCache } from './run-cache';
import { EVENT_COLUMNS } from './schema';
import { assertSongsStillPublished, readSongInput } from './song-state';
import type { StageResult } from './stage';
import { loadTable } from './validate';

/**
 * The build split so several workers share it (issue 10, item 5):
 *
 * 1. `buildSongs` (one task): songs, artists and the song lookup from the staged songs (or the lake's lookup
 *    when songs are kept), and the months that have plays, each with the staged event parts holding them.
 * 2. `buildPlayMonth` (mapped, one per month): songplays, time and user_days of one month. Every play, its
 *    time row and its (user, day) row fall in the month of its `ts`, so a month is built from that month's
 *    events alone, and DuckDB writes the month's partition files exactly as one build of all months does.
 * 3. `finishBuild` (one task): users, each user's latest play, from every month's user_days.
 *
 * Run one after another in one process they give the same files, byte for byte, as `buildTables` did in one
 * DuckDB session (test/sparkify-pipeline.test.ts compares).
 */

/** One month of plays, the staged event parts (URIs) that hold events of it, and the song lookup to match with. */
export interface PlayMonth {
  year: number;
  month: number;
  parts: string[];
  songLookup: string;
}

export interface BuildSongsResult {
  songsReusedFrom: string | null;
  /** Rows of songs and artists (absent when the published ones are kept). */
  rows: Partial<Record<TableName, number>>;
  files: number;
  months: PlayMonth[];
}

export interface BuildMonthResult {
  year: number;
  month: number;
  rows: { songplays: number; time: number };
  files: number;
}

/** The month of an event's `ts` as DuckDB's model computes it (UTC). */
const YEAR = 'year(make_timestamp(ts * 1000))';
const MONTH = 'month(make_timestamp(ts * 1000))';

/** Months (`YYYY-MM`) with `NextSong` events in one staged event part (a local Parquet file). */
export async function partMonths(settings: DuckDbOptions, scratch: string, file: string): Promise<string[]> {
  return withDuckDb(settings, scratch, (conn) => monthsOf(conn, file));
}

/** `partMonths` in an open DuckDB (staging asks the one that wrote the part). */
export async function monthsOf(conn: DuckDBConnection, file: string): Promise<string[]> {
  const r = await conn.runAndReadAll(
    `SELECT DISTINCT printf('%04d-%02d', ${YEAR}, ${MONTH}) AS m FROM read_parquet(${sqlFilePath(file)}) ` +
      `WHERE page = 'NextSong' ORDER BY m`,
  );
  return r.getRowObjectsJS().map((row) => row.m as string);
}

/** Moves a built folder into the run cache (replacing what was there), where later tasks on this worker find it. */
async function keepInCache(from: string, to: string): Promise<void> {
  await rm(to, { recursive: true, force: true });
  await mkdir(path.dirname(to), { recursive: true });
  await rename(from, to).catch(async () => {
    await cp(from, to, { recursive: true });
  });
}

/** Partition folders (`year=…/month=…`) a partitioned write made under `dir`. */
async function partitionDirs(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const y of await readdir(dir).catch(() => [])) {
    for (const m of await readdir(path.join(dir, y)).catch(() => [])) out.push(`${y}/${m}`);
  }
  return out;
}

async function countRows(conn: DuckDBConnection, table: string): Promise<number> {
  const r = await conn.runAndReadAll(`SELECT count(*)::INTEGER AS n FROM "${table}"`);
  return Number(r.getRowObjectsJS()[0]?.n ?? 0);
}

/** Writes one unpartitioned table of the connection into the run's staging and this worker's run cache. */
async function publishWhole(
  args: BuildTablesArgs,
  conn: DuckDBConnection,
  table: LayoutName,
  scratch: string,
  opts: { partitioned?: boolean } = {},
): Promise<number> {
  const paths = runPaths(args.output, args.runId);
  const local = path.join(scratch, 'out', table);
  await writeTable(conn, table, local, runToken(args.runId), opts);
  const uri = joinUri(paths.tables, table);
  await args.store.deletePrefix(uri);
  const files = await args.store.uploadDir(local, uri);
  await keepInCache(local, runCache(args.duckdb ?? {}, args.runId).at('tables', table));
  return files;
}

/** The months with plays, from the staging results (or, for results without months, from the parts themselves). */
async function playMonths(
  args: BuildTablesArgs,
  results: readonly StageResult[] | undefined,
  scratch: string,
  songLookup: string,
): Promise<PlayMonth[]> {
  const settings = args.duckdb ?? {};
  const paths = runPaths(args.output, args.runId);
  const events = (results ?? []).filter((r) => r.kind === 'events' && r.plays > 0);
  const byPart = new Map<string, string[]>();
  for (const r of events) if (r.months) byPart.set(r.part, r.months);
  if (!results || events.some((r) => !r.months)) {
    // Results from before stage reported months (or a plain call): read the parts' months here.
    const dir = await mirrorPrefix(
      args.store,
      paths.stagedEvents,
      runCache(settings, args.runId).at('staged', 'events'),
      {
        signal: args.signal,
      },
    );
    const parts = await parquetFilesUnder(dir);
    byPart.clear();
    for (const file of parts) {
      byPart.set(
        joinUri(paths.stagedEvents, path.relative(dir, file).split(path.sep).join('/')),
        await partMonths(settings, scratch, file),
      );
    }
  }
  const months = new Map<string, PlayMonth>();
  for (const [part, ms] of [...byPart].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    for (const m of ms) {
      const [year, month] = m.split('-').map(Number) as [number, number];
      const entry = months.get(m) ?? { year, month, parts: [], songLookup };
      entry.parts.push(part);
      months.set(m, entry);
    }
  }
  return [...months.keys()].sort().map((k) => months.get(k)!);
}

/** Step 1: songs, artists and the run's song lookup (unless the published songs are kept), and the play months. */
export async function buildSongs(
  args: BuildTablesArgs & { stageResults?: readonly StageResult[] },
): Promise<BuildSongsResult> {
  const { store } = args;
  const paths = runPaths(args.output, args.runId);
  const settings = args.duckdb ?? {};
  const cache = runCache(settings, args.runId);
  const songInput = await readSongInput(store, args.output, args.runId);
  await assertSongsStillPublished(store, args.output, songInput);
  return withScratch(settings, 'build-songs', async (dir) => {
    // Plays are matched with the lake's lookup when songs are kept, else with the one built here.
    const songLookup = songInput.reusedFrom ? lakeStatePaths(args.output).songLookup : paths.songLookup;
    const months = await playMonths(args, args.stageResults, dir, songLookup);
    if (songInput.reusedFrom) return { songsReusedFrom: songInput.reusedFrom, rows: {}, files: 0, months };
    const songs = await mirrorPrefix(store, paths.stagedSongs, cache.at('staged', 'songs'), args);
    // Written in the run cache, where each month's build on this worker finds it without downloading it.
    const lookupFile = cache.at('lookup', path.basename(paths.songLookup));
    await mkdir(path.dirname(lookupFile), { recursive: true });
    const { rows, files } = await withDuckDb(
      settings,
      dir,
      async (conn) => {
        await loadStaged(conn, { songs, events: path.join(dir, 'no-events') });
        await conn.run(SONG_MODEL_SQL);
        await conn.run(
          `COPY (SELECT * FROM song_lookup ORDER BY ALL) TO ${sqlString(lookupFile)} (FORMAT parquet, COMPRESSION zstd)`,
        );
        await limitPartitionBuffers(conn, settings);
        const counts: Partial<Record<TableName, number>> = {};
        let written = 0;
        for (const t of SONG_TABLES) {
          written += await publishWhole(args, conn, t, dir, { partitioned: !LAID_OUT_AT_PUBLISH.includes(t) });
          counts[t] = await countRows(conn, t);
        }
        return { rows: counts, files: written };
      },
      args.signal,
    );
    await store.write(paths.songLookup, { file: lookupFile });
    return { songsReusedFrom: null, rows, files, months };
  });
}

/** Step 2: songplays, time and user_days of one month, from the parts holding its events. */
export async function buildPlayMonth(args: BuildTablesArgs & { month: PlayMonth }): Promise<BuildMonthResult> {
  const { store, month } = args;
  const paths = runPaths(args.output, args.runId);
  const settings = args.duckdb ?? {};
  const cache = runCache(settings, args.runId);
  const wanted = new Set(month.parts);
  return withScratch(settings, 'build-month', async (dir) => {
    const eventsDir = await mirrorPrefix(store, paths.stagedEvents, cache.at('staged', 'events'), {
      signal: args.signal,
      include: (o) => wanted.has(o.uri),
    });
    const parts = month.parts.map((uri) => path.join(eventsDir, uri.slice(paths.stagedEvents.length + 1)));
    // The lookup's own folder mirrored (this object only): this worker's copy is kept when its ETag matches.
    const lookupDir = await mirrorPrefix(
      store,
      month.songLookup.slice(0, month.songLookup.lastIndexOf('/')),
      cache.at('lookup'),
      {
        signal: args.signal,
        include: (o) => o.uri === month.songLookup,
      },
    );
    const lookupFile = path.join(lookupDir, path.basename(month.songLookup));
    const token = runToken(args.runId);
    const out = path.join(dir, 'out');
    const rows = await withDuckDb(
      settings,
      dir,
      async (conn) => {
        const cols = EVENT_COLUMNS.map((c) => `"${c.name}"::${c.type} AS "${c.name}"`).join(', ');
        await conn.run(
          `CREATE VIEW staged_events AS SELECT ${cols} FROM read_parquet(${sqlFileList(parts)}) ` +
            `WHERE ${YEAR} = ${month.year} AND ${MONTH} = ${month.month}`,
        );
        await conn.run(`CREATE TABLE song_lookup AS SELECT * FROM read_parquet(${sqlFilePath(lookupFile)})`);
        await conn.run(PLAY_MODEL_SQL);
        await limitPartitionBuffers(conn, settings);
        await writeTable(conn, 'songplays', path.join(out, 'tables', 'songplays'), token);
        await writeTable(conn, 'time', path.join(out, 'tables', 'time'), token);
        await writeTable(conn, 'user_days', path.join(out, 'state', 'user_days'), token);
        return { songplays: await countRows(conn, 'songplays'), time: await countRows(conn, 'time') };
      },
      args.signal,
    );
    let files = 0;
    for (const [side, table, base] of [
      ['tables', 'songplays', paths.tables],
      ['tables', 'time', paths.tables],
      ['state', 'user_days', paths.state],
    ] as const) {
      for (const p of await partitionDirs(path.join(out, side, table))) {
        const local = path.join(out, side, table, p);
        const uri = joinUri(base, table, p);
        await store.deletePrefix(uri);
        const n = await store.uploadDir(local, uri);
        if (side === 'tables') files += n;
        await keepInCache(local, cache.at(side, table, p));
      }
    }
    return { year: month.year, month: month.month, rows, files };
  });
}

/** Step 3: users from every month's user_days; the build's result as one build gives it. */
export async function finishBuild(
  args: BuildTablesArgs & { songs: BuildSongsResult; months: readonly BuildMonthResult[] },
): Promise<BuildTablesResult> {
  const paths = runPaths(args.output, args.runId);
  const settings = args.duckdb ?? {};
  const cache = runCache(settings, args.runId);
  return withScratch(settings, 'build-users', async (dir) => {
    const userDays = await mirrorPrefix(args.store, joinUri(paths.state, 'user_days'), cache.at('state', 'user_days'), {
      signal: args.signal,
    });
    const { users, files } = await withDuckDb(
      settings,
      dir,
      async (conn) => {
        await loadTable(conn, 'user_days', userDays);
        await conn.run(`CREATE TABLE users AS ${USERS_FROM_USER_DAYS}`);
        return { files: await publishWhole(args, conn, 'users', dir), users: await countRows(conn, 'users') };
      },
      args.signal,
    );
    const sum = (k: 'songplays' | 'time') => args.months.reduce((a, m) => a + m.rows[k], 0);
    return {
      rows: { ...args.songs.rows, users, time: sum('time'), songplays: sum('songplays') },
      files: args.songs.files + files + args.months.reduce((a, m) => a + m.files, 0),
      tables: paths.tables,
      songsReusedFrom: args.songs.songsReusedFrom,
    };
  });
}
