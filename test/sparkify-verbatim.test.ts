/**
 * Staging reads the verbatim head of an event file (every line a record the fast scan accepts as it is) straight
 * from the input, or from a copy of its bytes for S3, instead of copying each record. These tests try to make
 * that head differ from what record-by-record staging writes: odd lines at its end, a file that grows after it
 * was read, S3 input, and a record DuckDB still refuses inside it.
 */
import assert from 'node:assert/strict';
import { appendFileSync, truncateSync } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { DuckDBInstance } from '@duckdb/node-api';
import { createStore, type Store } from '../storage';
import { sqlString } from '../activities/sparkify/duckdb';
import { InputDataError, listInputs, stageLogs, type StageResult } from '../activities/sparkify';
import { FileRecords, keepLines, LineSplitter, SpillBuffer, type Reject } from '../activities/sparkify/records';
import { EVENT_COLUMNS } from '../activities/sparkify/schema';
import { copyToParquet } from '../activities/sparkify/stage';
import { createTestBucket, s3ClientForTests } from './services';
import { eventRecord } from './event-record';

const tmp = (name: string) => fs.mkdtemp(path.join(os.tmpdir(), `tempoflow-${name}-`));

const event = (i: number, extra: Record<string, unknown> = {}) =>
  eventRecord(i, {
    page: i % 3 === 0 ? 'Home' : 'NextSong',
    song: `Title ${i}`,
    ...extra,
  });

const SONG = JSON.stringify({
  num_songs: 1,
  artist_id: 'AR1',
  artist_name: 'Test Artist',
  song_id: 'SO1',
  title: 'Title 1',
  duration: 200.5,
  year: 0,
});

const clean = (from: number, n: number) => Array.from({ length: n }, (_, k) => event(from + k));

/** The head stops at each of these; the lines after it are staged record by record, the same values. */
const ODD_LINES: [string, string][] = [
  ['a CRLF line', `${event(100)}\r`],
  ['a blank line', ''],
  ['a rejected line', '{"artist": "x", "auth": '],
  [
    'a record only the full check accepts',
    event(101, { registration: 1.540919166796e12 }).replace('1540919166796', '1.540919166796e12'),
  ],
];

function records(text: string): FileRecords {
  const r = new FileRecords('in.json', 0, 'events', new SpillBuffer(), new SpillBuffer(), true);
  const splitter = new LineSplitter((line, bytes, size, consumed, crlf) => r.line(line, bytes, size, consumed, crlf));
  splitter.push(Buffer.from(text));
  splitter.end();
  return r;
}

async function rowsOf(part: string): Promise<Record<string, unknown>[]> {
  const conn = await (await DuckDBInstance.create(':memory:')).connect();
  try {
    return (await conn.runAndReadAll(`SELECT * FROM read_parquet(${sqlString(part)})`)).getRowObjectsJS();
  } finally {
    conn.closeSync();
  }
}

async function rejectsOf(store: Store, result: StageResult): Promise<Pick<Reject, 'line' | 'reason'>[]> {
  if (!result.rejects) return [];
  const text = (await store.read(result.rejects)).toString('utf8').trimEnd();
  return text.split('\n').map((l) => {
    const { line, reason } = JSON.parse(l) as Reject;
    return { line, reason };
  });
}

/** Stages `log_data/<day>.json` files from `input` (one chunk) into `output`. */
async function stage(store: Store, input: string, output: string, runId: string): Promise<StageResult> {
  // listInputs refuses an input without songs.
  const songFile = input.startsWith('s3://') ? `${input}/song_data/TRA.json` : path.join(input, 'song_data/TRA.json');
  await store.write(songFile, SONG);
  const listed = await listInputs({ store, input, output, runId });
  assert.equal(listed.logChunks.length, 1);
  return stageLogs({ store, manifest: listed.logChunks[0] as string, output, runId, duckdb: { memoryLimit: '256MB' } });
}

void describe('a verbatim head: where it ends', () => {
  void test('a clean file is one head, with or without a final newline', () => {
    const lines = clean(1, 5);
    for (const text of [lines.join('\n') + '\n', lines.join('\n')]) {
      const r = records(text);
      assert.deepEqual([r.verbatim, r.verbatimBytes, r.records, r.accepted.count], [true, text.length, 5, 0]);
    }
  });

  for (const [what, odd] of ODD_LINES) {
    void test(`${what} ends it; the lines after it are copied`, () => {
      const head = clean(1, 3).join('\n') + '\n';
      const r = records(head + [odd, ...clean(4, 2)].join('\n') + '\n');
      assert.equal(r.verbatim, false);
      assert.equal(r.verbatimBytes, head.length);
      const after = odd === '' ? 2 : odd.startsWith('{"artist": "x"') ? 2 : 3;
      assert.equal(r.accepted.count, after);
      assert.equal(r.records, 3 + after);
    });
  }
});

void describe('staging with verbatim heads', () => {
  let dir: string;
  before(async () => {
    dir = await tmp('verbatim');
  });
  after(async () => {
    await fs.rm(dir, { recursive: true, force: true });
  });

  /**
   * The same lines staged twice: as they are (verbatim heads), and after a byte order mark, which ends the head
   * at line 1 so every record is copied one by one. Rows, their order, counts and rejects must be the same.
   */
  async function sameAsRecordByRecord(store: Store, root: string, files: Record<string, string>, run: string) {
    const asIs = joinRoot(root, `${run}-in`);
    const withBom = joinRoot(root, `${run}-bom`);
    for (const [day, text] of Object.entries(files)) {
      await store.write(joinRoot(asIs, `log_data/${day}.json`), text);
      await store.write(joinRoot(withBom, `log_data/${day}.json`), `\ufeff${text}`);
    }
    const out = joinRoot(root, `${run}-out`);
    const fast = await stage(store, asIs, out, `${run}-fast`);
    const slow = await stage(store, withBom, out, `${run}-slow`);
    const local = async (r: StageResult) => {
      if (!r.part.startsWith('s3://')) return r.part;
      const file = path.join(dir, `${run}-${path.basename(path.dirname(path.dirname(r.part)))}.parquet`);
      await store.download(r.part, file);
      return file;
    };
    const fastRows = await rowsOf(await local(fast));
    assert.deepEqual(fastRows, await rowsOf(await local(slow)));
    assert.deepEqual(
      [fast.records, fast.rejected, fast.plays, fast.months],
      [slow.records, slow.rejected, slow.plays, slow.months],
    );
    assert.deepEqual(await rejectsOf(store, fast), await rejectsOf(store, slow));
    assert.equal(slow.certified, 0, 'no file with a byte order mark is certified');
    return { fast, rows: fastRows };
  }

  const joinRoot = (root: string, rel: string) => (root.startsWith('s3://') ? `${root}/${rel}` : path.join(root, rel));

  const files = () => ({
    '2018-11-01': clean(1, 40).join('\n') + '\n',
    // The head ends at each odd line in turn; the rest of the file follows record by record.
    ...Object.fromEntries(
      ODD_LINES.map(([, odd], k) => [
        `2018-11-0${k + 2}`,
        [...clean(50 * k + 100, 7), odd, ...clean(50 * k + 120, 9)].join('\n'),
      ]),
    ),
  });

  void test('local input: the same rows, counts and rejects as record by record', async () => {
    const store = createStore();
    const { fast, rows } = await sameAsRecordByRecord(store, dir, files(), 'local');
    assert.equal(fast.records, 40 + 4 * 16 + 2); // and the CRLF and exponent records (the blank and rejected lines are none)
    assert.equal(fast.certified, 1, 'DuckDB certified the clean file whole; the four odd ones went line by line');
    assert.deepEqual(
      (await rejectsOf(store, fast)).map((r) => r.line),
      [8],
    );
    assert.equal(rows.length, fast.records);
  });

  void test('S3 input: the head is kept from the download, cut where it ends', async () => {
    const client = await s3ClientForTests();
    try {
      const store = createStore({ s3Client: client });
      const bucket = await createTestBucket('verbatim');
      const { fast } = await sameAsRecordByRecord(store, `s3://${bucket}`, files(), 's3');
      assert.equal(fast.records, 40 + 4 * 16 + 2);
      assert.equal(fast.certified, 1);
    } finally {
      client.destroy();
    }
  });

  void test('when DuckDB cannot read a chunk as lines, every file goes line by line: the same rows and rejects', async () => {
    // A raw control character is DuckDB's line delimiter here (and a reject either way): its read fails.
    const withControl =
      [...clean(300, 5), event(305, { song: 'a\u0001b' }).replace('\\u0001', '\u0001'), ...clean(306, 5)].join('\n') +
      '\n';
    const store = createStore();
    const { fast } = await sameAsRecordByRecord(
      store,
      dir,
      { '2018-11-01': clean(1, 40).join('\n') + '\n', '2018-11-02': withControl },
      'refused-lines',
    );
    assert.equal(fast.certified, 0, 'not even the clean file: the chunk went line by line');
    assert.equal(fast.records, 40 + 10);
    assert.deepEqual(
      (await rejectsOf(store, fast)).map((r) => r.line),
      [6],
    );
  });

  /** A store whose local files are changed by `change` as soon as staging has read them to the end. */
  const changedAfterRead = (change: (file: string) => void): Store => {
    const base = createStore();
    return {
      ...base,
      readStream: async (uri) => {
        const stream = await base.readStream(uri);
        stream.once('end', () => change(uri));
        return stream;
      },
    };
  };

  async function logFile(name: string, lines: string[]): Promise<{ input: string; file: string }> {
    const input = path.join(dir, `${name}-in`);
    const file = path.join(input, 'log_data/2018-11-01.json');
    await fs.mkdir(path.dirname(file), { recursive: true });
    await fs.writeFile(file, lines.join('\n') + '\n');
    return { input, file };
  }

  void test('a local file that grows after it was read: only the lines read are staged', async () => {
    const { input, file } = await logFile('grows', clean(1, 10));
    // The file gets one more line once staging has read it to the end (a writer still appending to it).
    const store = changedAfterRead((f) => appendFileSync(f, event(11) + '\n'));
    const result = await stage(store, input, path.join(dir, 'grows-out'), 'grows');
    assert.equal((await fs.readFile(file, 'utf8')).trimEnd().split('\n').length, 11, 'the file did grow');
    assert.equal(result.records, 10);
    const rows = await rowsOf(result.part);
    assert.deepEqual(
      rows.map((r) => r.itemInSession),
      Array.from({ length: 10 }, (_, k) => k + 1),
    );
  });

  void test('a local file that shrinks after it was read: the lines read are staged', async () => {
    const { input } = await logFile('shrinks', clean(1, 10));
    const store = changedAfterRead((f) => truncateSync(f, 100));
    const result = await stage(store, input, path.join(dir, 'shrinks-out'), 'shrinks');
    assert.equal(result.records, 10);
    const rows = await rowsOf(result.part);
    assert.deepEqual(
      rows.map((r) => r.itemInSession),
      Array.from({ length: 10 }, (_, k) => k + 1),
    );
  });

  void test('a record DuckDB refuses inside a head is named by its input file and line', async () => {
    const head = path.join(dir, 'head.ndjson');
    // A duplicate key the scan would never pass: written here as if it had.
    await fs.writeFile(head, `${event(1)}\n${event(2).replace(/}$/, ', "ts": 1}')}\n`);
    await assert.rejects(
      copyToParquet({
        settings: { memoryLimit: '256MB' },
        dir,
        columns: EVENT_COLUMNS,
        segments: [head],
        verbatim: new Map([[head, 's3://in/2018-11-05.json']]),
        target: path.join(dir, 'refused.parquet'),
        files: ['s3://in/2018-11-05.json'],
        what: 'events chunk 0',
      }),
      (err: unknown) => {
        assert.ok(err instanceof InputDataError);
        assert.equal(
          err.message,
          'events chunk 0: DuckDB could not read the record at s3://in/2018-11-05.json line 2: duplicate key',
        );
        return true;
      },
    );
  });
});

void test('a write error on the kept copy (a full scratch disk) fails the file: no short copy is staged for it', async (t) => {
  // /dev/full: every write fails with ENOSPC, as on a full disk.
  if (!(await fs.stat('/dev/full').catch(() => undefined))) return t.skip('no /dev/full on this system');
  const lines = Array.from({ length: 2_000 }, (_, i) => event(i)).join('\n') + '\n';
  const chunks = Array.from({ length: 8 }, () => Buffer.from(lines));
  await assert.rejects(
    keepLines(Readable.from(chunks), '/dev/full', () => undefined),
    (err: NodeJS.ErrnoException) => err.code === 'ENOSPC',
  );
});
