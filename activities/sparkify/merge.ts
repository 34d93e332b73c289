import path from 'node:path';
import type { DataInterval } from '../../core/types';
import type { Store } from '../storage/store';
import { joinUri } from '../storage/uri';
import { writeTable } from './build-tables';
import { type DuckDbSettings, withDuckDb, withScratch } from './duckdb';
import { QualityCheckError } from './errors';
import { type TableName, runPaths, runToken } from './paths';
import { downloadAll } from './transfer';
import { loadTable } from './validate';

/** Tables an interval run merges into the lake; songs and artists come whole from every run's song input. */
const MERGED: readonly TableName[] = ['songplays', 'time', 'users'];

export interface MergeArgs {
  store: Store;
  output: string;
  runId: string;
  dataInterval: DataInterval;
  duckdb?: DuckDbSettings;
  signal?: AbortSignal;
}

/**
 * Turns an interval run's staged tables into the whole lake: the published `songplays` and `time` rows outside
 * the interval plus the run's rows (so the interval's rows are replaced, and a repeated run changes nothing),
 * and `users` from each user's latest play across the merged songplays — the run's user row when that play is
 * in the interval, else the published one. Any order of interval runs, with repeats, so gives the tables of
 * one full run. Runs under the output's publish lock, right before the swap.
 */
export async function mergeIntoLake(args: MergeArgs): Promise<{ merged: boolean }> {
  const { store, output, runId } = args;
  const published = await store.list(joinUri(output, 'songplays'));
  if (!published.some((o) => o.key.endsWith('.parquet'))) return { merged: false }; // nothing to merge into
  const paths = runPaths(output, runId);
  const settings = args.duckdb ?? {};
  const start = sqlTimestamp(args.dataInterval.start);
  const end = sqlTimestamp(args.dataInterval.end);
  return withScratch(settings, 'merge', async (dir) => {
    const downloads = [];
    for (const table of MERGED) {
      for (const [side, uri] of [
        ['pub', joinUri(output, table)],
        ['run', joinUri(paths.tables, table)],
      ] as const) {
        for (const o of await store.list(uri)) {
          if (o.key.endsWith('.parquet'))
            downloads.push({ o, local: path.join(dir, side, table, ...o.key.split('/')) });
        }
      }
    }
    await downloadAll(store, downloads, { signal: args.signal });
    const out = path.join(dir, 'merged');
    const token = runToken(runId);
    await withDuckDb(
      settings,
      dir,
      async (conn) => {
        for (const table of MERGED) {
          for (const side of ['pub', 'run']) {
            await loadTable(conn, table, path.join(dir, side, table));
            await conn.run(`ALTER TABLE "${table}" RENAME TO ${side}_${table}`);
          }
        }
        const inInterval = (column: string) => `(${column} >= ${start} AND ${column} < ${end})`;
        await conn.run(`
          CREATE TABLE songplays AS
            SELECT * FROM pub_songplays WHERE NOT ${inInterval('start_time')}
            UNION ALL BY NAME SELECT * FROM run_songplays;
          CREATE TABLE time AS
            SELECT * FROM pub_time WHERE NOT ${inInterval('start_time')}
            UNION ALL BY NAME SELECT * FROM run_time;
          CREATE TABLE users AS
            WITH latest AS (
              SELECT user_id, start_time FROM (
                SELECT user_id, start_time, row_number() OVER (PARTITION BY user_id ORDER BY start_time DESC) AS rn
                FROM songplays) WHERE rn = 1)
            SELECT r.* FROM latest l JOIN run_users r USING (user_id) WHERE ${inInterval('l.start_time')}
            UNION ALL BY NAME
            SELECT p.* FROM latest l JOIN pub_users p USING (user_id) WHERE NOT ${inInterval('l.start_time')};
        `);
        // The merged lake must hold together before it replaces the published one.
        const broken = await conn.runAndReadAll(`
          SELECT
            (SELECT count(*) - count(DISTINCT songplay_id) FROM songplays)::BIGINT AS duplicate_songplays,
            (SELECT count(*) - count(DISTINCT start_time) FROM time)::BIGINT AS duplicate_times,
            (SELECT count(*) FROM songplays s ANTI JOIN users u USING (user_id))::BIGINT AS unknown_users,
            (SELECT count(DISTINCT user_id) FROM songplays)::BIGINT - (SELECT count(*) FROM users)::BIGINT AS user_gap`);
        const problems = Object.entries(broken.getRowObjectsJS()[0] ?? {}).filter(([, n]) => Number(n) !== 0);
        if (problems.length) {
          throw new QualityCheckError(
            `merging run ${runId} into ${output} would break the lake: ${problems.map(([k, n]) => `${k} ${Number(n)}`).join(', ')}`,
          );
        }
        for (const table of MERGED) await writeTable(conn, table, path.join(out, table), token);
      },
      args.signal,
      { preserveOrder: true },
    );
    for (const table of MERGED) {
      const staged = joinUri(paths.tables, table);
      await store.deletePrefix(staged);
      await store.uploadDir(path.join(out, table), staged);
    }
    return { merged: true };
  });
}

/** An ISO instant as a DuckDB TIMESTAMP literal (tables hold UTC start times as plain timestamps). */
function sqlTimestamp(iso: string): string {
  return `TIMESTAMP '${new Date(iso).toISOString().replace('T', ' ').replace('Z', '')}'`;
}
