import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createWriteStream } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { DuckDBInstance } from '@duckdb/node-api';
import { createStore } from '../storage';
import { sqlString } from '../activities/sparkify/duckdb';
import {
  InputDataError,
  RejectRateError,
  listInputs,
  readPublished,
  runSparkifyPipeline,
  stageLogs,
  stageSongs,
  type StageResult,
} from '../activities/sparkify';
import { MAX_RECORD_BYTES, RAW_LIMIT, SOURCE_FILE, SOURCE_LINE, type Reject } from '../activities/sparkify/records';
import { EVENT_COLUMNS } from '../activities/sparkify/schema';
import { copyToParquet } from '../activities/sparkify/stage';
import { eventRecord as event } from './event-record';

const store = createStore();
const root = path.join(import.meta.dirname, '..');
const tmp = (name: string) => fs.mkdtemp(path.join(os.tmpdir(), `tempoflow-${name}-`));
// Every bad record below carries this marker: it must never show up outside the rejects files.
const SECRET = 'SECRET-7f3a';

const song = (id: string, extra: Record<string, unknown> = {}) =>
  JSON.stringify({
    num_songs: 1,
    artist_id: 'ARTEST00000000001',
    artist_latitude: null,
    artist_longitude: null,
    artist_location: '',
    artist_name: 'Test Artist',
    song_id: id,
    title: `Title ${id}`,
    duration: 200.5,
    year: 0,
    ...extra,
  });

async function readRejects(uri: string | null): Promise<Reject[]> {
  assert.ok(uri, 'a rejects file is written');
  const text = (await store.read(uri)).toString('utf8');
  return text
    .trimEnd()
    .split('\n')
    .map((l) => JSON.parse(l) as Reject);
}

async function parquetRows(file: string, columns: string): Promise<Record<string, unknown>[]> {
  const conn = await (await DuckDBInstance.create(':memory:')).connect();
  try {
    return (await conn.runAndReadAll(`SELECT ${columns} FROM read_parquet(${sqlString(file)})`)).getRowObjectsJS();
  } finally {
    conn.closeSync();
  }
}

void describe('bad records are rejects, not failures', () => {
  let input: string;
  let output: string;
  const logFile = 'log_data/2018/11/2018-11-01-events.json';

  before(async () => {
    input = await tmp('rejects-in');
    output = await tmp('rejects-out');
    const lines: (string | Buffer)[] = [
      `${event(1)}\r`, // 1: good, CRLF
      '', // 2: blank: not a record
      event(2).replace(/}$/, `, "userId": "${SECRET}"}`), // 3: duplicate key
      Buffer.concat([
        Buffer.from(event(3, { firstName: `${SECRET}-` }).slice(0, -2)),
        Buffer.from([0xff, 0xfe]),
        Buffer.from('"}'),
      ]), // 4: not UTF-8
      event(4, { location: SECRET + 'x'.repeat(MAX_RECORD_BYTES) }), // 5: over the size limit
      `{"artist": "${SECRET}", "auth": `, // 6: truncated
      event(5), // 7: good
      `{"artist": ${SECRET}}`, // 8: V8 quotes this in its message
      event(6, { ts: SECRET }), // 9: wrong type
      `{"a": 1, "\\u0061": "${SECRET}"}`, // 10: duplicate key, spelled two ways
      event(7), // 11: good, and the last line has no newline
    ];
    const bytes = Buffer.concat(
      lines.flatMap((l, i) => [Buffer.from(l), Buffer.from(i < lines.length - 1 ? '\n' : '')]),
    );
    await store.write(path.join(input, logFile), bytes);

    const w = (rel: string, body: string | Buffer) => store.write(path.join(input, 'song_data', rel), body);
    await w('A/A/A/TRAAA1.json', song('SO1'));
    await w('A/A/B/TRAAB1.json', song('SO2', { title: 'Pretty' }).replace(/,/g, ',\r\n  ')); // pretty, CRLF
    await w('A/A/C/TRAAC1.json', song('SO3').replace(/}$/, `, "title": "${SECRET}"}`)); // duplicate key
    await w('A/A/D/TRAAD1.json', song('SO4', { title: SECRET.repeat(MAX_RECORD_BYTES / 8) })); // over the limit
    await w(
      'A/A/E/TRAAE1.json',
      Buffer.concat([Buffer.from(song('SO5').slice(0, -2)), Buffer.from([0xc3]), Buffer.from('"}')]),
    );
    // An artist_id too long to name a partition folder would fail publish's songs layout, run after run.
    await w('A/A/F/TRAAF1.json', song('SO6', { artist_id: `AR${SECRET}${'X'.repeat(250)}` }));
  });
  after(async () => {
    await fs.rm(input, { recursive: true, force: true });
    await fs.rm(output, { recursive: true, force: true });
  });

  void test('each bad line is in _rejects with its file, line and reason; the counts add up', async () => {
    const list = await listInputs({ store, input, output, runId: 'r' });
    const progress: number[] = [];
    const events = await stageLogs({
      store,
      manifest: list.logChunks[0] ?? '',
      output,
      runId: 'r',
      onProgress: (p) => progress.push(p.bytesDone),
    });
    assert.deepEqual([events.records, events.rejected, events.plays], [3, 7, 3]);
    const size = (await fs.stat(path.join(input, logFile))).size;
    assert.equal(progress.at(-1), size, 'progress reaches every byte of the file');

    const rejects = await readRejects(events.rejects);
    assert.ok(rejects.every((r) => r.file.endsWith(logFile)));
    assert.deepEqual(
      rejects.map((r) => [r.line, r.reason]),
      [
        [3, "duplicate key 'userId'"],
        [4, 'invalid UTF-8'],
        [
          5,
          `record larger than the ${MAX_RECORD_BYTES}-byte limit (${Buffer.byteLength(event(4, { location: SECRET + 'x'.repeat(MAX_RECORD_BYTES) }))} bytes)`,
        ],
        [6, 'malformed JSON: truncated record (unexpected end)'],
        [8, 'malformed JSON: unexpected character'],
        [9, "'ts' must be an integer (BIGINT), got a string"],
        [10, 'duplicate key'],
      ],
    );
    // The lake keeps the raw record, clipped.
    assert.equal(rejects[2]?.raw.length, RAW_LIMIT);
    assert.ok(rejects[1]?.raw.endsWith('"userId":"7\ufffd\ufffd"}'));
    assert.equal(rejects[3]?.raw, `{"artist": "${SECRET}", "auth": `);

    // The staged part holds exactly the good lines, in line order.
    const staged = await parquetRows(events.part, 'itemInSession, "userAgent"');
    assert.deepEqual(
      staged.map((r) => r.itemInSession),
      [1, 5, 7],
    );
    assert.equal(staged[0]?.userAgent, 'Mozilla/5.0 "quoted" \\ agent');

    const songs = await stageSongs({ store, manifest: list.songChunks[0] ?? '', output, runId: 'r' });
    assert.deepEqual([songs.files, songs.records, songs.rejected], [6, 2, 4]);
    assert.deepEqual(
      (await readRejects(songs.rejects)).map((r) => [path.basename(r.file), r.line, r.reason]),
      [
        ['TRAAC1.json', 1, "duplicate key 'title'"],
        ['TRAAD1.json', 1, `file larger than the ${MAX_RECORD_BYTES}-byte record limit`],
        ['TRAAE1.json', 1, 'invalid UTF-8'],
        ['TRAAF1.json', 1, "'artist_id' is longer than 64 bytes"],
      ],
    );
    const titles = await parquetRows(songs.part, 'title');
    assert.deepEqual(
      titles.map((r) => r.title),
      ['Title SO1', 'Pretty'],
    );

    // Task results carry counts and URIs only.
    for (const result of [events, songs] satisfies StageResult[]) {
      assert.ok(!JSON.stringify(result).includes(SECRET), JSON.stringify(result));
    }
  });

  void test('the run succeeds within maxRejectRate, and its error names counts only when it does not', async () => {
    await assert.rejects(runSparkifyPipeline({ store, input, output, runId: 'strict' }), (err: unknown) => {
      assert.ok(err instanceof RejectRateError);
      assert.match(err.message, /11 of 16 rejected/);
      assert.ok(!err.message.includes(SECRET));
      return true;
    });
    const run = await runSparkifyPipeline({ store, input, output, runId: 'lenient', maxRejectRate: 0.8 });
    const all = [...run.songs, ...run.events];
    assert.deepEqual([all.reduce((a, r) => a + r.records, 0), all.reduce((a, r) => a + r.rejected, 0)], [5, 11]);
    assert.ok(!JSON.stringify(run).includes(SECRET));
    assert.equal((await readPublished(store, output, 'songplays')).length, 3);
    // Published, the long artist_id rejected rather than failing the songs layout.
    assert.deepEqual((await readPublished(store, output, 'songs')).map((r) => r.song_id).sort(), ['SO1', 'SO2']);
    const rejectFiles = (await store.list(path.join(output, '_rejects', 'lenient'))).map((o) => path.basename(o.key));
    assert.deepEqual(rejectFiles.sort(), ['events-part-00000.jsonl', 'songs-part-00000.jsonl']);
  });
});

void describe('a record DuckDB still refuses', () => {
  void test('fails with the input file and line, never the record; other DuckDB errors keep their class', async () => {
    const dir = await tmp('refused');
    try {
      const segment = path.join(dir, 'segment.ndjson');
      const good = { ...JSON.parse(event(1)), [SOURCE_FILE]: 1, [SOURCE_LINE]: 41 } as Record<string, unknown>;
      const bad = JSON.stringify({ ...good, [SOURCE_LINE]: 42 }).replace(/}$/, `, "auth": "${SECRET}"}`);
      await fs.writeFile(segment, `${JSON.stringify(good)}\n${bad}\n`);
      const args = {
        settings: { memoryLimit: '256MB' },
        dir,
        columns: EVENT_COLUMNS,
        segments: [segment],
        target: path.join(dir, 'out.parquet'),
        files: ['s3://in/a.json', 's3://in/b.json'],
        what: 'events chunk 3',
      };
      await assert.rejects(copyToParquet(args), (err: unknown) => {
        assert.ok(err instanceof InputDataError);
        assert.equal(
          err.message,
          'events chunk 3: DuckDB could not read the record at s3://in/b.json line 42: duplicate key',
        );
        assert.equal(err.cause, undefined);
        return true;
      });
      // A target DuckDB cannot write is not bad data.
      await fs.writeFile(segment, `${JSON.stringify(good)}\n`);
      await assert.rejects(copyToParquet({ ...args, target: path.join(dir, 'missing', 'out.parquet') }), (err) => {
        assert.ok(!(err instanceof InputDataError));
        return true;
      });
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  });
});

void describe('a log file larger than 1 GiB', () => {
  let input: string;
  let output: string;
  before(async () => {
    input = await tmp('big-in');
    output = await tmp('big-out');
  });
  after(async () => {
    await fs.rm(input, { recursive: true, force: true });
    await fs.rm(output, { recursive: true, force: true });
  });

  void test('stages in bounded memory, streamed, with exact line numbers', async () => {
    await store.write(path.join(input, 'song_data/A/TRA.json'), song('SO1'));
    // Written streaming: blocks of valid, repetitive lines; one bad line near the end; no final newline.
    const file = path.join(input, 'log_data/2018/11/2018-11-01-events.json');
    await fs.mkdir(path.dirname(file), { recursive: true });
    const out = createWriteStream(file);
    const block = Buffer.from(Array.from({ length: 1000 }, (_, i) => event(i)).join('\n') + '\n');
    const blocks = Math.ceil((1.05 * 1024 ** 3) / block.length);
    for (let b = 0; b < blocks; b++) if (!out.write(block)) await once(out, 'drain');
    out.end(`${event(0).replace(/}$/, ', "ts": 1}')}\n${event(1)}`);
    await once(out, 'finish');
    const size = (await fs.stat(file)).size;
    assert.ok(size > 1024 ** 3);

    const child = spawn(
      process.execPath,
      ['--import', 'tsx', path.join(root, 'test/fixtures/stage-big-file.ts'), input, output, '128MB', '1'],
      { cwd: root, stdio: ['ignore', 'pipe', 'inherit'] },
    );
    let stdout = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    const [code] = (await once(child, 'exit')) as [number];
    assert.equal(code, 0, stdout);
    const { results, maxRSS, seconds } = JSON.parse(stdout) as {
      results: StageResult[];
      maxRSS: number;
      seconds: number;
    };
    console.log(
      `staged ${(size / 1024 ** 3).toFixed(2)} GiB in ${seconds.toFixed(0)} s, peak RSS ${(maxRSS / 1024 ** 2).toFixed(0)} MiB`,
    );
    const [result] = results;
    assert.ok(result && results.length === 1);
    assert.equal(result.records, blocks * 1000 + 1);
    assert.equal(result.rejected, 1);
    const [reject] = await readRejects(result.rejects);
    assert.deepEqual([reject?.line, reject?.reason], [blocks * 1000 + 1, "duplicate key 'ts'"]);
    // Far below the file's size: the old whole-file read needed more than the file (and failed past 512 MiB).
    assert.ok(maxRSS < size / 2, `peak RSS ${maxRSS} bytes for a ${size}-byte file`);
    const [count] = await parquetRows(result.part, 'count(*) AS n, max(itemInSession) AS top');
    assert.deepEqual(count, { n: BigInt(blocks * 1000 + 1), top: 999 });
  });
});
