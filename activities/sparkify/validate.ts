import path from 'node:path';
import type { DuckDBConnection } from '@duckdb/node-api';
import type { Store } from '../../storage/store';
import { joinUri } from '../../storage/uri';
import { type DuckDbOptions, withDuckDb, withScratch } from '../../worker/duckdb';
import { parquetFilesUnder, sqlFileList, sqlFilePath } from './duckdb';
import { loadStaged, stagedDirs } from './build-tables';
import { mirrorPrefix } from '../../storage/mirror';
import { runCache } from './run-cache';
import { type LayoutName, type OnProgress, SONG_TABLES, TABLES, lakeStatePaths, runPaths } from './paths';
import { REFERENCES, emptyTableDdl, tableSpec } from './catalog';
import { readSongInput } from './song-state';
import { type StageResult, assessRejects } from './stage';

export interface ValidateArgs {
  store: Store;
  output: string;
  runId: string;
  /** The staging tasks' results: their record counts are checked against the staged Parquet. */
  stageResults?: readonly Pick<StageResult, 'kind' | 'records' | 'rejected'>[];
  maxRejectRate?: number;
  duckdb?: DuckDbOptions;
  onProgress?: OnProgress;
  signal?: AbortSignal;
}

export interface QualityCheck {
  name: string;
  passed: boolean;
  detail: string;
}

export interface ValidateResult {
  passed: boolean;
  checks: QualityCheck[];
  /** URI of the written `quality.json`. */
  report: string;
}

/** A key as SQL: a column, or a row of columns (`(user_id, day)`), so count(DISTINCT ...) works for both. */
function sqlKey(key: readonly string[]): string {
  return key.length === 1 ? (key[0] as string) : `(${key.join(', ')})`;
}

async function scalar(conn: DuckDBConnection, sql: string): Promise<number> {
  const r = await conn.runAndReadAll(`SELECT (${sql})::BIGINT AS v`);
  return Number(r.getRowObjectsJS()[0]?.v ?? 0);
}

/**
 * Loads a table directory (hive-partitioned or not) as a DuckDB table of the same name; with `view`, as a view
 * that reads the files on each query (for a few scans: nothing is copied into the database).
 */
export async function loadTable(
  conn: DuckDBConnection,
  table: LayoutName,
  dir: string,
  opts: { view?: boolean } = {},
): Promise<void> {
  const files = await parquetFilesUnder(dir);
  if (files.length === 0) {
    // No files at all (e.g. no plays in the interval): an empty table of the same columns, so the checks still run.
    await conn.run(`CREATE TABLE "${table}" (${emptyTableDdl(table)})`);
    return;
  }
  // The files listed, never a glob: a lake's path may hold glob characters (`lake[1]`).
  const list = sqlFileList(files);
  const kind = opts.view ? 'VIEW' : 'TABLE';
  await conn.run(`CREATE ${kind} "${table}" AS SELECT * FROM read_parquet(${list}, hive_partitioning = true)`);
}

/**
 * Checks the run's staged tables before they are published: keys unique and present, references resolve, and
 * row counts agree with the staged input (and with what the staging tasks reported). Writes
 * `<output>/_runs/<run>/quality.json`.
 */
export async function validate(args: ValidateArgs): Promise<ValidateResult> {
  const { store } = args;
  const paths = runPaths(args.output, args.runId);
  const settings = args.duckdb ?? {};
  const songInput = await readSongInput(store, args.output, args.runId);
  const tables = songInput.reusedFrom ? TABLES.filter((t) => !SONG_TABLES.includes(t)) : TABLES;
  const checks = await withScratch(settings, 'validate', async (dir) => {
    // What build wrote on this worker is still in the run cache (checked against the objects' ETags).
    const cache = runCache(settings, args.runId);
    const progress = { onProgress: args.onProgress, signal: args.signal };
    const tablesDir = await mirrorPrefix(store, paths.tables, cache.at('tables'), progress);
    const staged = await stagedDirs(store, paths, cache, progress);
    const lookupFile = path.join(dir, 'song_lookup.parquet');
    if (songInput.reusedFrom) await store.download(lakeStatePaths(args.output).songLookup, lookupFile);
    return withDuckDb(
      settings,
      dir,
      async (conn) => {
        await loadStaged(conn, staged);
        // Views: each check scans only the columns it reads; at 10M events copying the tables in cost more.
        for (const t of tables) await loadTable(conn, t, path.join(tablesDir, t), { view: true });
        const out: QualityCheck[] = [];
        const check = (name: string, passed: boolean, detail: string) => out.push({ name, passed, detail });

        if (songInput.reusedFrom) {
          // Plays were matched with the lookup published with the kept songs: check against that lookup.
          await conn.run(`CREATE TABLE song_lookup AS SELECT * FROM read_parquet(${sqlFilePath(lookupFile)})`);
          await conn.run('CREATE VIEW songs AS SELECT DISTINCT song_id FROM song_lookup');
          await conn.run('CREATE VIEW artists AS SELECT DISTINCT artist_id FROM song_lookup');
          check(
            'songs and artists kept',
            true,
            `song input unchanged (${songInput.files} files) since run ${songInput.reusedFrom}, which published them`,
          );
        }
        for (const t of tables) {
          const key = tableSpec(t).primaryKey;
          const rows = await scalar(conn, `SELECT count(*) FROM "${t}"`);
          const distinct = await scalar(conn, `SELECT count(DISTINCT ${sqlKey(key)}) FROM "${t}"`);
          const nulls = await scalar(
            conn,
            `SELECT count(*) FROM "${t}" WHERE ${key.map((c) => `${c} IS NULL`).join(' OR ')}`,
          );
          check(
            `${t}.${sqlKey(key)} unique and not null`,
            nulls === 0 && distinct === rows,
            `${rows} rows, ${distinct} distinct keys, ${nulls} null keys`,
          );
        }
        // Songs and artists kept from an earlier run are checked through its lookup (the views above).
        for (const ref of REFERENCES) {
          const { table: t, column: c } = ref;
          const missing = await scalar(
            conn,
            `SELECT count(*) FROM "${t}" WHERE ${c} IS NOT NULL AND ${c} NOT IN (SELECT ${ref.key} FROM "${ref.to}")`,
          );
          check(`${t}.${c} in ${ref.to}`, missing === 0, `${missing} ${t} rows whose ${c} is not in ${ref.to}`);
        }
        const plays = "FROM staged_events WHERE page = 'NextSong'";
        const expectedPlays = await scalar(
          conn,
          `SELECT count(*) FROM (SELECT DISTINCT ts, userId, sessionId, itemInSession ${plays})`,
        );
        const songplays = await scalar(conn, 'SELECT count(*) FROM songplays');
        check(
          'songplays rows = distinct staged NextSong events',
          songplays === expectedPlays,
          `${songplays} songplays, ${expectedPlays} distinct staged NextSong events`,
        );
        const expectedTimes = await scalar(conn, `SELECT count(DISTINCT ts) ${plays}`);
        const times = await scalar(conn, 'SELECT count(*) FROM time');
        check(
          'time rows = distinct play start times',
          times === expectedTimes,
          `${times} time rows, ${expectedTimes} distinct start times`,
        );
        const expectedUsers = await scalar(conn, `SELECT count(DISTINCT userId) ${plays}`);
        const users = await scalar(conn, 'SELECT count(*) FROM users');
        check(
          'users rows = distinct users with plays',
          users === expectedUsers,
          `${users} users, ${expectedUsers} distinct users in staged NextSong events`,
        );
        if (!songInput.reusedFrom) {
          const expectedSongs = await scalar(conn, 'SELECT count(DISTINCT song_id) FROM staged_songs');
          const songs = await scalar(conn, 'SELECT count(*) FROM songs');
          check(
            'songs rows = distinct staged songs',
            songs === expectedSongs,
            `${songs} songs, ${expectedSongs} distinct staged song_ids`,
          );
        }

        if (args.stageResults) {
          for (const kind of ['songs', 'events'] as const) {
            const reported = args.stageResults.filter((r) => r.kind === kind).reduce((a, r) => a + r.records, 0);
            const staged = await scalar(conn, `SELECT count(*) FROM staged_${kind}`);
            check(
              `staged ${kind} records = reported by staging`,
              staged === reported,
              `${staged} staged, ${reported} reported`,
            );
          }
          const a = assessRejects(args.stageResults, args.maxRejectRate);
          check('reject rate within maxRejectRate', a.passed, a.message);
        }
        return out;
      },
      args.signal,
      { preserveOrder: false },
    );
  });
  const passed = checks.every((c) => c.passed);
  const report = joinUri(paths.runMeta, 'quality.json');
  await store.write(report, JSON.stringify({ runId: args.runId, passed, checks }, null, 2) + '\n');
  return { passed, checks, report };
}
