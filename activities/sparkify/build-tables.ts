import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import type { DuckDBConnection } from '@duckdb/node-api';
import type { Store } from '../../storage/store';

import { mirrorPrefix } from '../../storage/mirror';
import { runCache } from './run-cache';
import { DEFAULT_DUCKDB_MEMORY_LIMIT, type DuckDbOptions } from '../../worker/duckdb';
import { parquetFilesUnder, parseSize, sqlFileList, sqlString } from './duckdb';
import { type LayoutName, type OnProgress, type TableName, runPaths } from './paths';
import { orderByList, selectList, tableSpec } from './catalog';
import { type BuildMonthResult, buildPlayMonth, buildSongs, finishBuild } from './build-partitioned';
import type { StageResult } from './stage';
import { EVENT_COLUMNS, SONG_COLUMNS, columnsDdl } from './schema';

export interface BuildTablesArgs {
  store: Store;
  output: string;
  runId: string;
  duckdb?: DuckDbOptions;
  onProgress?: OnProgress;
  signal?: AbortSignal;
}

export interface BuildTablesResult {
  /** Rows per table built (songs and artists are absent when the published ones are kept). */
  rows: Partial<Record<TableName, number>>;
  /** Table files written. */
  files: number;
  /** URI of the staged tables (`<output>/_staging/<run>/tables`). */
  tables: string;
  /** The run whose published songs and artists this run keeps, or null when it built them. */
  songsReusedFrom: string | null;
}

/** Loads the staged Parquet parts (local directories of `part-*.parquet`) into typed tables; none gives an empty table. */
export async function loadStaged(conn: DuckDBConnection, dirs: { songs: string; events: string }): Promise<void> {
  for (const [table, dir, columns] of [
    ['staged_songs', dirs.songs, SONG_COLUMNS],
    ['staged_events', dirs.events, EVENT_COLUMNS],
  ] as const) {
    const parts = await parquetFilesUnder(dir);
    if (parts.length > 0) {
      // A view: the model reads each staged part once, straight from its Parquet file.
      const cols = columns.map((c) => `"${c.name}"::${c.type} AS "${c.name}"`).join(', ');
      await conn.run(`CREATE VIEW ${table} AS SELECT ${cols} FROM read_parquet(${sqlFileList(parts)})`);
    } else {
      await conn.run(`CREATE TABLE ${table} (${columnsDdl(columns)})`);
    }
  }
}

/** The run's staged parts as local directories: read in place, from the worker's run cache, or downloaded. */
export async function stagedDirs(
  store: Store,
  paths: ReturnType<typeof runPaths>,
  cache: ReturnType<typeof runCache>,
  opts: { onProgress?: OnProgress; signal?: AbortSignal } = {},
): Promise<{ songs: string; events: string }> {
  return {
    songs: await mirrorPrefix(store, paths.stagedSongs, cache.at('staged', 'songs'), opts),
    events: await mirrorPrefix(store, paths.stagedEvents, cache.at('staged', 'events'), opts),
  };
}

/**
 * The star schema as SQL over `staged_songs` / `staged_events`, in two parts: the song side (songs, artists and
 * the lookup plays are matched with) and the play side (users, time, songplays; needs `song_lookup`). Every
 * choice is deterministic (ties broken on all columns), so the same input gives the same rows.
 */
export const SONG_MODEL_SQL = `
-- One row per song_id, a song listed twice keeps the smallest (title, artist, duration, year, location) version.
CREATE TABLE song_rows AS
SELECT * EXCLUDE (rn) FROM (
  SELECT *, row_number() OVER (PARTITION BY song_id ORDER BY title, artist_id, duration, year, artist_name,
    artist_location NULLS LAST, artist_latitude NULLS LAST, artist_longitude NULLS LAST) AS rn
  FROM staged_songs) WHERE rn = 1;

CREATE TABLE songs AS
SELECT song_id, title, duration, year, artist_id FROM song_rows;

-- One row per artist_id: the spelling with coordinates and a location first, then the smallest name/song.
CREATE TABLE artists AS
SELECT artist_id, artist_name AS name, artist_location AS location, artist_latitude AS latitude,
       artist_longitude AS longitude FROM (
  SELECT *, row_number() OVER (PARTITION BY artist_id ORDER BY artist_latitude IS NULL, coalesce(artist_location, '') = '',
    artist_name, artist_location, artist_latitude, artist_longitude, song_id) AS rn
  FROM song_rows) WHERE rn = 1;

-- A play matches the song with the same title, artist name and duration (the smallest song_id if several do).
CREATE TABLE song_lookup AS
SELECT title, artist_name, duration, min(song_id) AS song_id, arg_min(artist_id, song_id) AS artist_id
FROM song_rows GROUP BY title, artist_name, duration;
`;

/** `users` from `user_days`: each user's latest play overall is the latest of their days' latest plays. */
export const USERS_FROM_USER_DAYS = `
SELECT user_id, first_name, last_name, gender, level FROM (
  SELECT *, row_number() OVER (PARTITION BY user_id ORDER BY ts DESC, session_id DESC, item_in_session DESC) AS rn
  FROM user_days) WHERE rn = 1`;

export const PLAY_MODEL_SQL = `
-- NextSong plays, each event once: an event delivered twice (same ts, user, session, item) is one play.
CREATE TABLE plays AS
SELECT * EXCLUDE (rn) FROM (
  SELECT *, row_number() OVER (PARTITION BY ts, userId, sessionId, itemInSession ORDER BY artist, song, length, level,
    firstName, lastName, gender, location, userAgent, auth, method, status, registration) AS rn
  FROM staged_events WHERE page = 'NextSong') WHERE rn = 1;

-- Each user's latest play of each day (by ts, ties on session and item): lake state for merging intervals.
CREATE TABLE user_days AS
SELECT CAST(userId AS BIGINT) AS user_id, CAST(make_timestamp(ts * 1000) AS DATE) AS day, ts,
       sessionId AS session_id, itemInSession AS item_in_session, firstName AS first_name, lastName AS last_name,
       gender, level, year(make_timestamp(ts * 1000)) AS year, month(make_timestamp(ts * 1000)) AS month
FROM (
  SELECT *, row_number() OVER (PARTITION BY userId, CAST(make_timestamp(ts * 1000) AS DATE)
    ORDER BY ts DESC, sessionId DESC, itemInSession DESC) AS rn
  FROM plays) WHERE rn = 1;

-- Users from their latest play.
CREATE TABLE users AS ${USERS_FROM_USER_DAYS};

CREATE TABLE time AS
SELECT start_time, hour(start_time) AS hour, day(start_time) AS day, week(start_time) AS week,
       isodow(start_time) AS weekday, year(start_time) AS year, month(start_time) AS month
FROM (SELECT DISTINCT make_timestamp(ts * 1000) AS start_time FROM plays);

CREATE TABLE songplays AS
SELECT md5(concat_ws('|', p.ts, p.userId, p.sessionId, p.itemInSession)) AS songplay_id,
       make_timestamp(p.ts * 1000) AS start_time, CAST(p.userId AS BIGINT) AS user_id, p.level,
       p.sessionId AS session_id, p.location, p.userAgent AS user_agent, l.song_id, l.artist_id,
       year(make_timestamp(p.ts * 1000)) AS year, month(make_timestamp(p.ts * 1000)) AS month
FROM plays p LEFT JOIN song_lookup l ON l.title = p.song AND l.artist_name = p.artist AND l.duration = p.length;
`;

/** The whole star schema from staged songs and events. */
export const MODEL_SQL = SONG_MODEL_SQL + PLAY_MODEL_SQL;

/**
 * Tables staged as one sorted file and laid out in partitions only by publish. `songs` has a partition per
 * artist, thousands of tiny files: written once, into the lake, instead of twice (staging, then the lake), they
 * cost one S3 request each instead of two.
 */
export const LAID_OUT_AT_PUBLISH: readonly LayoutName[] = ['songs'];

/**
 * Writes a table of the connection to `dir` in its lake layout (catalog.ts): sorted, hive-partitioned where it says
 * (unless `partitioned: false`: one sorted file with the partition columns in it), and with file names carrying
 * the run's token, so a publish never overwrites the previous run's keys in place.
 */
export async function writeTable(
  conn: DuckDBConnection,
  table: LayoutName,
  dir: string,
  token: string,
  opts: { partitioned?: boolean } = {},
): Promise<void> {
  await mkdir(dir, { recursive: true });
  const query = `SELECT ${selectList(table)} FROM "${table}" ORDER BY ${orderByList(table)}`;
  const partitionBy = opts.partitioned === false ? [] : tableSpec(table).partitionBy;
  if (partitionBy.length === 0) {
    const file = path.join(dir, `part-${token}-0.parquet`);
    await conn.run(`COPY (${query}) TO ${sqlString(file)} (FORMAT parquet, COMPRESSION zstd)`);
    return;
  }
  // All rows in one partition (a month's plays): one ordered file in its folder, written with every thread.
  const only = await onlyPartition(conn, table, partitionBy);
  if (only) {
    const file = path.join(dir, only, `part-${token}-0.parquet`);
    await mkdir(path.dirname(file), { recursive: true });
    const columns = `SELECT * EXCLUDE (${partitionBy.map((c) => `"${c}"`).join(', ')}) FROM (${query})`;
    await conn.run(`COPY (${columns}) TO ${sqlString(file)} (FORMAT parquet, COMPRESSION zstd)`);
    return;
  }
  const options = `FORMAT parquet, COMPRESSION zstd, PARTITION_BY (${partitionBy.join(', ')}), FILENAME_PATTERN 'part-${token}-{i}'`;
  // Keeping insertion order across thousands of partitions (songs: one per artist) slows the write; one thread
  // writes the sorted rows in order anyway, so the files are the same on every run.
  const setting = async (name: string) => {
    const r = await conn.runAndReadAll(`SELECT current_setting('${name}')::VARCHAR AS v`);
    return r.getRowObjectsJS()[0]?.v as string;
  };
  const threads = await setting('threads');
  const order = await setting('preserve_insertion_order');
  await conn.run('SET threads = 1');
  await conn.run('SET preserve_insertion_order = false');
  try {
    await conn.run(`COPY (${query}) TO ${sqlString(dir)} (${options})`);
  } finally {
    await conn.run(`SET threads = ${Number(threads)}; SET preserve_insertion_order = ${order === 'true'}`);
  }
}

/**
 * The folder (`year=2018/month=11`) of a table whose rows all share one partition, named as DuckDB's partitioned
 * write names it; undefined when there are several, none, or a value it would have to escape (or NULL).
 */
async function onlyPartition(
  conn: DuckDBConnection,
  table: LayoutName,
  partitionBy: readonly string[],
): Promise<string | undefined> {
  const values = partitionBy.map((c) => `"${c}"::VARCHAR AS "${c}"`).join(', ');
  const r = await conn.runAndReadAll(`SELECT DISTINCT ${values} FROM "${table}" LIMIT 2`);
  const rows = r.getRowObjectsJS();
  if (rows.length !== 1) return undefined;
  const parts = partitionBy.map((c) => {
    const v = rows[0]?.[c];
    return typeof v === 'string' && /^[0-9A-Za-z_.-]+$/.test(v) ? `${c}=${v}` : undefined;
  });
  return parts.every((p) => p !== undefined) ? parts.join('/') : undefined;
}

/**
 * A partitioned COPY buffers up to `partitioned_write_flush_threshold` rows per thread, with blocks for every
 * partition they touch: the default (~500k rows) runs out of memory with one partition per artist. ~1 row per MB
 * of memory keeps the buffers within the memory limit.
 */
export async function limitPartitionBuffers(conn: DuckDBConnection, settings: DuckDbOptions): Promise<void> {
  const memory = parseSize(settings.memoryLimit ?? DEFAULT_DUCKDB_MEMORY_LIMIT) ?? 1e9;
  await conn.run(`SET partitioned_write_flush_threshold = ${Math.max(256, Math.floor(memory / 1e6))}`);
}

/**
 * Builds the star schema from the run's staged Parquet and writes each table as Parquet, sorted and
 * hive-partitioned (songs as one sorted file, see LAID_OUT_AT_PUBLISH), to `<output>/_staging/<run>/tables/`
 * (and `user_days` to `_staging/<run>/state/`), keeping the files in the worker's run cache, where validate finds
 * them. When `list_inputs` found the song input unchanged, songs and artists are not built: plays are matched
 * with the lake's persisted song lookup instead. Otherwise the run's lookup goes to `_staging/<run>/` for
 * publish. In one process, the three steps the DAG spreads over workers (build-partitioned.ts).
 */
export async function buildTables(
  args: BuildTablesArgs & { stageResults?: readonly StageResult[] },
): Promise<BuildTablesResult> {
  const songs = await buildSongs(args);
  const months: BuildMonthResult[] = [];
  for (const month of songs.months) {
    months.push(await buildPlayMonth({ ...args, month }));
  }
  return finishBuild({ ...args, songs, months });
}
