/**
 * The Sparkify catalog (activities/sparkify/catalog.ts) against what states the schema a second time: the model
 * SQL (run on a tiny dataset, its tables DESCRIBEd), the files writeTable lays out and loadTable reads back, and the
 * layout tables of README.md and docs/sparkify.md. No services: DuckDB in memory and a temp folder.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';
import { PLAY_MODEL_SQL, SONG_MODEL_SQL, loadStaged, writeTable } from '../activities/sparkify/build-tables';
import {
  CATALOG,
  LAYOUT_NAMES,
  REFERENCES,
  SONG_TABLES,
  TABLES,
  tableSpec,
  type LayoutName,
} from '../activities/sparkify/catalog';
import { loadTable } from '../activities/sparkify/validate';

const root = path.join(import.meta.dirname, '..');

async function describeTable(conn: DuckDBConnection, table: string): Promise<[string, string][]> {
  const r = await conn.runAndReadAll(`DESCRIBE "${table}"`);
  return r.getRowObjectsJS().map((row) => [row.column_name as string, row.column_type as string]);
}

async function count(conn: DuckDBConnection, table: string): Promise<number> {
  const r = await conn.runAndReadAll(`SELECT count(*)::INTEGER AS n FROM "${table}"`);
  return Number(r.getRowObjectsJS()[0]?.n);
}

/** A tiny input covering the model's branches: a song listed twice, a matched and an unmatched play, a non-play. */
async function modelOnTinyInput(conn: DuckDBConnection): Promise<void> {
  // Staged tables of the raw schema (schema.ts), created empty and typed, then filled.
  await loadStaged(conn, { songs: '/nonexistent-songs', events: '/nonexistent-events' });
  await conn.run(`
    INSERT INTO staged_songs BY NAME
    SELECT * FROM (VALUES
      (1, 'AR1', 35.1, -90.0, 'Memphis, TN', 'The Band', 'SO1', 'A Song', 200.5, 1999),
      (1, 'AR1', NULL, NULL, NULL, 'The Band', 'SO1', 'A Song', 200.5, 1999),
      (1, 'AR2', NULL, NULL, '', 'Other', 'SO2', 'Other Song', 100.0, 0)
    ) t(num_songs, artist_id, artist_latitude, artist_longitude, artist_location, artist_name, song_id, title,
        duration, year);
    INSERT INTO staged_events BY NAME
    SELECT * FROM (VALUES
      ('The Band', 'Logged In', 'Ann', 'F', 0, 'Lee', 200.5, 'free', 'Here', 'PUT', 'NextSong', 1540919166796.0,
       7, 'A Song', 200, 1541105830796, 'UA', '12'),
      ('Nobody', 'Logged In', 'Ann', 'F', 1, 'Lee', 10.0, 'paid', 'Here', 'PUT', 'NextSong', 1540919166796.0,
       7, 'Unknown', 200, 1543799999000, 'UA', '12'),
      (NULL, 'Logged Out', NULL, NULL, 2, NULL, NULL, 'free', NULL, 'GET', 'Home', NULL, 8, NULL, 200,
       1541105830999, NULL, '')
    ) t(artist, auth, firstName, gender, itemInSession, lastName, length, level, location, method, page,
        registration, sessionId, song, status, ts, userAgent, userId);
  `);
  await conn.run(SONG_MODEL_SQL);
  await conn.run(PLAY_MODEL_SQL);
}

describe('Sparkify catalog', () => {
  let instance: DuckDBInstance;
  let conn: DuckDBConnection;
  let dir: string;
  before(async () => {
    instance = await DuckDBInstance.create(':memory:', { threads: '1' });
    conn = await instance.connect();
    await modelOnTinyInput(conn);
    dir = await mkdtemp(path.join(os.tmpdir(), 'tempoflow-catalog-'));
  });
  after(async () => {
    conn.closeSync();
    instance.closeSync();
    await rm(dir, { recursive: true, force: true });
  });

  test('the model SQL outputs exactly the catalog columns, in order, with their DuckDB types', async () => {
    for (const t of LAYOUT_NAMES) {
      const expected = tableSpec(t).columns.map((c): [string, string] => [c.name, c.type]);
      assert.deepEqual(await describeTable(conn, t), expected, `table ${t}`);
      assert.ok((await count(conn, t)) > 0, `the tiny input gives ${t} rows`);
    }
  });

  test('each table states a key, and its sort order ends in a total order (it holds the key)', () => {
    for (const t of LAYOUT_NAMES) {
      const spec = tableSpec(t);
      const names = spec.columns.map((c) => c.name);
      assert.equal(new Set(names).size, names.length, `${t}: column names are unique`);
      assert.ok(spec.primaryKey.length > 0, `${t} has a key`);
      for (const c of spec.primaryKey) assert.ok(spec.orderBy.includes(c), `${t}: orderBy holds key column ${c}`);
      assert.ok(spec.oneRowPer.length > 0 && spec.columns.every((c) => c.description.length > 0), `${t} described`);
    }
    assert.deepEqual(TABLES, ['songs', 'artists', 'users', 'time', 'songplays']);
    assert.deepEqual(SONG_TABLES, ['songs', 'artists']);
    assert.equal(CATALOG.user_days.kind, 'state');
    assert.deepEqual(
      REFERENCES.map((r) => `${r.table}.${r.column} -> ${r.to}.${r.key}`),
      [
        'songplays.user_id -> users.user_id',
        'songplays.song_id -> songs.song_id',
        'songplays.artist_id -> artists.artist_id',
      ],
    );
  });

  test('writeTable lays each table out in its partitions; read back it has the columns of its empty DDL', async () => {
    for (const t of LAYOUT_NAMES) {
      const out = path.join(dir, t);
      await writeTable(conn, t, out, 'tok');
      const files = (await readdir(out, { recursive: true, withFileTypes: true }))
        .filter((e) => e.isFile())
        .map((e) => path.relative(out, path.join(e.parentPath, e.name)));
      const folders = tableSpec(t)
        .partitionBy.map((c) => `${c}=[^/]+/`)
        .join('');
      for (const f of files) assert.match(f, new RegExp(`^${folders}part-tok-\\d+\\.parquet$`), `${t}: ${f}`);
      assert.ok(files.length > 0, `${t} written`);

      // Read back as validate, merge and readTable do; and as loadTable stands in for a table with no files.
      const [withFiles, withoutFiles] = [
        await DuckDBInstance.create(':memory:'),
        await DuckDBInstance.create(':memory:'),
      ];
      const [a, b] = [await withFiles.connect(), await withoutFiles.connect()];
      try {
        await loadTable(a, t, out);
        await loadTable(b, t, path.join(dir, 'no-such-folder'));
        assert.equal(await count(b, t), 0);
        // Hive partition columns come back last; the name -> type pairs must agree.
        assert.deepEqual(new Map(await describeTable(a, t)), new Map(await describeTable(b, t)), `table ${t}`);
        assert.equal(await count(a, t), await count(conn, t), `${t}: every row read back`);
      } finally {
        for (const c of [a, b]) c.closeSync();
        for (const i of [withFiles, withoutFiles]) i.closeSync();
      }
    }
  });

  test('a table whose rows share one partition is one file in its folder, read back as a partitioned write', async () => {
    // The tiny input's plays span two months (see the test above: two folders); one month of each table here.
    await conn.run('CREATE SCHEMA one_month');
    for (const t of ['time', 'songplays', 'user_days'] as const) {
      await conn.run(
        `CREATE TABLE one_month."${t}" AS SELECT * FROM main."${t}" ` +
          `WHERE (year, month) = (SELECT min((year, month)) FROM main."${t}")`,
      );
    }
    await conn.run(`SET search_path = 'one_month,main'`);
    for (const t of ['time', 'songplays', 'user_days'] as const) {
      const one = path.join(dir, `one-${t}`);
      await writeTable(conn, t, one, 'tok');
      const files = (await readdir(one, { recursive: true, withFileTypes: true })).filter((e) => e.isFile());
      assert.equal(files.length, 1, `${t}: one file`);
      const file = path.join(files[0]!.parentPath, files[0]!.name);
      assert.match(path.relative(one, file), /^year=\d{4}\/month=\d{1,2}\/part-tok-0\.parquet$/);
      // As DuckDB's partitioned write leaves them: the partition columns only in the folder names.
      const schema = await conn.runAndReadAll(
        `SELECT name FROM parquet_schema('${file}') WHERE name IN ('year', 'month')`,
      );
      assert.deepEqual(schema.getRowObjectsJS(), []);
      const partitioned = path.join(dir, `partitioned-${t}`);
      await conn.run(
        `COPY (SELECT * FROM "${t}" ORDER BY ALL) TO '${partitioned}' (FORMAT parquet, PARTITION_BY (year, month))`,
      );
      const rows = async (folder: string) => {
        const instance = await DuckDBInstance.create(':memory:');
        const c = await instance.connect();
        try {
          await loadTable(c, t, folder);
          return (await c.runAndReadAll(`SELECT * FROM "${t}" ORDER BY ALL`)).getRowObjectsJS();
        } finally {
          c.closeSync();
          instance.closeSync();
        }
      };
      const got = await rows(one);
      assert.ok(got.length > 0);
      assert.deepEqual(got, await rows(partitioned), t);
    }
    await conn.run(`SET search_path = 'main'`);
  });

  /** Column names in backticks, leaving out notes in parentheses (`(TIMESTAMP, UTC, from \`ts\` ms)`). */
  const backticked = (cell: string) => [...cell.replace(/\([^)]*\)/g, '').matchAll(/`([^`]+)`/g)].map((m) => m[1]);
  const partitionsOf = (p: string) => [...p.matchAll(/([a-z_]+)=</g)].map((m) => m[1]);
  const fileColumns = (t: LayoutName) =>
    tableSpec(t)
      .columns.map((c) => c.name)
      .filter((c) => !tableSpec(t).partitionBy.includes(c));

  test("README's layout table names each table's columns and partitions as the catalog does", async () => {
    const readme = await readFile(path.join(root, 'README.md'), 'utf8');
    const seen: string[] = [];
    for (const line of readme.split('\n')) {
      const cells = line.split('|').map((c) => c.trim());
      const t = TABLES.find((name) => cells[1] === `\`${name}\``);
      if (!t || cells.length < 5) continue;
      seen.push(t);
      assert.deepEqual(partitionsOf(cells[2] ?? ''), tableSpec(t).partitionBy, `README: ${t} partitions`);
      assert.deepEqual(backticked(cells[3] ?? ''), fileColumns(t), `README: ${t} columns`);
    }
    assert.deepEqual(seen, TABLES, 'README has a row per table');
  });

  test("docs/sparkify.md's lake layout names each table's columns and partitions as the catalog does", async () => {
    const doc = await readFile(path.join(root, 'docs', 'sparkify.md'), 'utf8');
    const entries: { table: LayoutName; path: string; columns: string }[] = [];
    for (const line of doc.split('\n')) {
      const m = /^<output>\/([a-z_]+)\/(\S*)\s{2,}(.*)$/.exec(line);
      const t = TABLES.find((name) => name === m?.[1]);
      if (m && t) entries.push({ table: t, path: m[2] ?? '', columns: m[3] ?? '' });
      else if (/^\s{20,}\S/.test(line) && entries.length) entries[entries.length - 1]!.columns += ' ' + line.trim();
    }
    assert.deepEqual(
      entries.map((e) => e.table),
      TABLES,
      'a layout line per table',
    );
    for (const e of entries) {
      assert.deepEqual(partitionsOf(e.path), tableSpec(e.table).partitionBy, `docs: ${e.table} partitions`);
      assert.deepEqual(
        e.columns.split(',').map((c) => c.trim()),
        fileColumns(e.table),
        `docs: ${e.table} columns`,
      );
    }
  });
});
