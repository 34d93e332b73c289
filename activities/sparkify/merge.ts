import path from 'node:path';
import type { DataInterval } from '../../core/types';
import type { ObjectInfo, Store } from '../../storage/store';
import { joinUri } from '../../storage/uri';
import { USERS_FROM_USER_DAYS, writeTable } from './build-tables';
import { type DuckDbOptions, withDuckDb, withScratch } from '../../worker/duckdb';
import { InputDataError, QualityCheckError } from './errors';
import { publishedFiles } from './lake-files';
import { lakeStatePaths, runPaths } from './paths';
import { mirrorPrefix } from '../../storage/mirror';
import { runCache } from './run-cache';
import { downloadAll } from './transfer';
import { loadTable } from './validate';

/** The tables partitioned by the month of their `start_time`: only the partitions a run touches are rewritten. */
const MONTHLY: readonly ('songplays' | 'time')[] = ['songplays', 'time'];

export interface MergeArgs {
  store: Store;
  output: string;
  runId: string;
  dataInterval: DataInterval;
  duckdb?: DuckDbOptions;
  signal?: AbortSignal;
  /** The publish's token: in the merged files' names and their staging folder, so no two attempts share one. */
  token: string;
}

export interface MergeResult {
  /** Where the merged tables are staged (`_staging/<run>/merged-<token>`): `songplays`, `time`, `users`, `user_days`. */
  merged: string;
  /** The `songplays` and `time` partitions (`year=2018/month=11`) to replace; the others stay as published. */
  partitions: string[];
}

/**
 * The days an interval run owns: those whose daily log file it reads (`list_inputs` takes the files dated in
 * [start, end)), so [start, end) rounded up to whole UTC days.
 */
export function dayScope(interval: DataInterval): { start: Date; end: Date } {
  const ceilDay = (iso: string) => new Date(Math.ceil(Date.parse(iso) / 86_400_000) * 86_400_000);
  return { start: ceilDay(interval.start), end: ceilDay(interval.end) };
}

/** `year=Y/month=M` of every month that [start, end) overlaps. */
function monthsOf(start: Date, end: Date): string[] {
  const out: string[] = [];
  for (let y = start.getUTCFullYear(), m = start.getUTCMonth(); Date.UTC(y, m, 1) < end.getTime(); m++) {
    if (m === 12) [y, m] = [y + 1, 0];
    out.push(`year=${y}/month=${m + 1}`);
  }
  return out;
}

/** `year=Y/month=M` of a partitioned file's key, if it has one. */
function partitionOf(key: string): string | undefined {
  return /^(year=[^/]+\/month=[^/]+)\//.exec(key)?.[1];
}

/**
 * Merges an interval run's tables into the published lake, reading and rewriting only what the run touches:
 * - `songplays` and `time`: in each month partition the run touches, the published rows outside the run's days
 *   plus the run's rows (so the run's days are replaced, and a repeated run changes nothing);
 * - `user_days` (lake state, small): the same replacement by day, over all months;
 * - `users`: each user's latest play across all `user_days`, so the latest level across all runs.
 * Any order of interval runs, with repeats, so gives the tables of one full run. Runs under the output's
 * publish lock, right before the swap. Returns null when nothing is published yet (the run's tables are the
 * lake). The run's own staged tables are left as they are, so a retried publish can merge again.
 */
export async function mergeIntoLake(args: MergeArgs): Promise<MergeResult | null> {
  const { store, output, runId } = args;
  // The published lake as its markers say: never files a publish is adding or removing.
  const published = await publishedFiles(store, joinUri(output, 'songplays'));
  if (published.length === 0) return null;
  const lake = lakeStatePaths(output);
  const publishedUserDays = await publishedFiles(store, lake.userDays);
  if (publishedUserDays.length === 0) {
    throw new InputDataError(
      `the lake at ${output} has tables but no ${lake.userDays}/ (it was written by an older tempoflow): ` +
        'run the DAG once without a data interval to rebuild it, then interval runs can merge into it',
    );
  }
  const paths = runPaths(output, runId);
  const scope = dayScope(args.dataInterval);
  const runFiles = {
    songplays: await store.list(joinUri(paths.tables, 'songplays')),
    time: await store.list(joinUri(paths.tables, 'time')),
  };
  const partitions = [
    ...new Set([
      ...monthsOf(scope.start, scope.end),
      ...[...runFiles.songplays, ...runFiles.time].flatMap((o) => partitionOf(o.key) ?? []),
    ]),
  ].sort();
  const settings = args.duckdb ?? {};
  return withScratch(settings, 'merge', async (dir) => {
    const downloads: { o: ObjectInfo; local: string }[] = [];
    const want = (objects: ObjectInfo[], side: string, table: string, sub = '') => {
      for (const o of objects) {
        if (o.key.endsWith('.parquet'))
          downloads.push({ o, local: path.join(dir, side, table, sub, ...o.key.split('/')) });
      }
    };
    for (const table of MONTHLY) {
      const files = await publishedFiles(store, joinUri(output, table));
      for (const p of partitions) {
        want(
          files.filter((o) => o.key.startsWith(`${p}/`)).map((o) => ({ ...o, key: o.key.slice(p.length + 1) })),
          'pub',
          table,
          p,
        );
      }
    }
    want(publishedUserDays, 'pub', 'user_days');
    await downloadAll(store, downloads, { signal: args.signal });
    // The run's own tables: still in this worker's run cache when build ran here.
    const cache = runCache(settings, runId);
    const runDirs: Record<(typeof MONTHLY)[number] | 'user_days', string> = {
      songplays: await mirrorPrefix(store, joinUri(paths.tables, 'songplays'), cache.at('tables', 'songplays')),
      time: await mirrorPrefix(store, joinUri(paths.tables, 'time'), cache.at('tables', 'time')),
      user_days: await mirrorPrefix(store, joinUri(paths.state, 'user_days'), cache.at('state', 'user_days')),
    };

    const out = path.join(dir, 'merged');
    const token = args.token;
    await withDuckDb(
      settings,
      dir,
      async (conn) => {
        for (const table of [...MONTHLY, 'user_days'] as const) {
          const sides: [string, string][] = [
            ['pub', path.join(dir, 'pub', table)],
            ['run', runDirs[table]],
          ];
          for (const [side, local] of sides) {
            await loadTable(conn, table, local);
            await conn.run(`ALTER TABLE "${table}" RENAME TO ${side}_${table}`);
          }
        }
        const [start, end] = [sqlTimestamp(scope.start), sqlTimestamp(scope.end)];
        const outside = (column: string) => `NOT (${column} >= ${start} AND ${column} < ${end})`;
        await conn.run(`
          CREATE TABLE songplays AS
            SELECT * FROM pub_songplays WHERE ${outside('start_time')}
            UNION ALL BY NAME SELECT * FROM run_songplays;
          CREATE TABLE time AS
            SELECT * FROM pub_time WHERE ${outside('start_time')}
            UNION ALL BY NAME SELECT * FROM run_time;
          CREATE TABLE user_days AS
            SELECT * FROM pub_user_days WHERE ${outside('day')}
            UNION ALL BY NAME SELECT * FROM run_user_days;
          CREATE TABLE users AS ${USERS_FROM_USER_DAYS};
        `);
        // The merged partitions must hold together before they replace the published ones.
        const broken = await conn.runAndReadAll(`
          SELECT
            (SELECT count(*) - count(DISTINCT songplay_id) FROM songplays)::BIGINT AS duplicate_songplays,
            (SELECT count(*) - count(DISTINCT start_time) FROM time)::BIGINT AS duplicate_times,
            (SELECT count(*) - count(DISTINCT (user_id, day)) FROM user_days)::BIGINT AS duplicate_user_days,
            (SELECT count(*) FROM songplays s ANTI JOIN users u USING (user_id))::BIGINT AS unknown_users`);
        const problems = Object.entries(broken.getRowObjectsJS()[0] ?? {}).filter(([, n]) => Number(n) !== 0);
        if (problems.length) {
          throw new QualityCheckError(
            `merging run ${runId} into ${output} would break the lake: ${problems.map(([k, n]) => `${k} ${Number(n)}`).join(', ')}`,
          );
        }
        for (const table of [...MONTHLY, 'users', 'user_days'] as const) {
          await writeTable(conn, table, path.join(out, table), token);
        }
      },
      args.signal,
      { preserveOrder: true },
    );
    // Each publish attempt merges again from scratch, into its own folder.
    const merged = joinUri(paths.staging, `merged-${token}`);
    await store.uploadDir(out, merged);
    return { merged, partitions };
  });
}

/** A UTC instant as a DuckDB TIMESTAMP literal (tables hold UTC start times as plain timestamps). */
function sqlTimestamp(at: Date): string {
  return `TIMESTAMP '${at.toISOString().replace('T', ' ').replace('Z', '')}'`;
}
