/**
 * The staging fast path (activities/sparkify/record-scan.ts) must change nothing: for any input, staging with
 * it gives the same rejects, counts and staged values (as DuckDB reads them) as the full check alone. Checked on
 * hand-picked edge cases and on a few thousand deterministic mutations of real-looking records.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';
import { sqlString } from '../activities/sparkify/duckdb';
import { FileRecords, LineSplitter, SpillBuffer, songFileRecords } from '../activities/sparkify/records';
import { RecordScanner, eventLinePattern } from '../activities/sparkify/record-scan';
import { type ColumnSpec, EVENT_COLUMNS, SONG_COLUMNS, checkSong } from '../activities/sparkify/schema';
import { eventRecord } from './event-record';

const event = (extra: Record<string, unknown> = {}) =>
  eventRecord(3, {
    artist: 'Des\u00e9e',
    song: 'Title',
    ts: 1541105830796,
    userAgent: '"Mozilla/5.0 (Macintosh)"',
    ...extra,
  }).replace('/', '\\/'); // as the Udacity files write it
const song = (extra: Record<string, unknown> = {}) =>
  JSON.stringify({
    num_songs: 1,
    artist_id: 'ARGCY1Y1187B9A4FA5',
    artist_latitude: 36.16778,
    artist_longitude: -86.77836,
    artist_location: 'Nashville, TN.',
    artist_name: 'Gloriana',
    song_id: 'SOQOTLQ12AB01868D0',
    title: 'Clementina Santaf\u00e8',
    duration: 153.33832,
    year: 0,
    ...extra,
  })
    .replace(/,"/g, ', "')
    .replace('\u00e8', '\\u00e8'); // an escape, as the Udacity files write it

const verdict = (columns: readonly ColumnSpec[], text: string, multiline = false) =>
  new RecordScanner(columns, multiline, columns === EVENT_COLUMNS).scan(Buffer.from(text), 0, Buffer.byteLength(text));

void test('the scan accepts ordinary records and leaves every doubtful one to the full check', () => {
  assert.equal(verdict(EVENT_COLUMNS, event()), 2, 'a play');
  assert.equal(verdict(EVENT_COLUMNS, event({ page: 'Home', userId: '' })), 1, 'a visit');
  assert.equal(verdict(SONG_COLUMNS, song()), 1);
  assert.equal(verdict(SONG_COLUMNS, song().replace(/, "/g, ',\r\n  "'), true), 1, 'pretty-printed');
  const doubtful: [string, string][] = [
    ['negative zero', event({ length: -0.0 }).replace('"length":0', '"length":-0.0')],
    ['an exponent', event().replace('200.5', '2.005e2')],
    ['a lone surrogate escape', event().replace('"Ann"', '"\\ud800"')],
    ['a surrogate pair escape', event().replace('"Ann"', '"\\ud83d\\ude00"')],
    ['a duplicate key', event().replace(/}$/, ',"ts":1}')],
    ['a key spelled with an escape', event().replace('"auth"', '"\\u0061uth"')],
    ['a key staging appends', event({ _file: 1 })],
    ['a nested object', event({ extra: {} })],
    ['an array', event({ extra: [] })],
    ['an integer column holding a fraction', event({ itemInSession: 1.5 })],
    ['INTEGER past 9 digits', event({ itemInSession: 1234567890 })],
    ['BIGINT past 15 digits', event({ ts: 1234567890123456 })],
    ['a string for a number', event({ ts: '1' })],
    ['a number for a string', event({ artist: 1 })],
    ['a play without a user', event({ userId: '' })],
    ['a userId that is not digits', event({ userId: '7a' })],
    ['a missing required field', event({ page: undefined })],
    ['an empty page', event({ page: '' })],
    ['a carriage return in an event line', event().replace(',', ',\r')],
    ['leading whitespace', ` ${event()}`],
    ['a control character in a string', event().replace('Ann', 'A\u0001nn')],
  ];
  for (const [what, text] of doubtful) assert.equal(verdict(EVENT_COLUMNS, text), 0, what);

  // artist_id names a partition folder: at most 64 bytes of UTF-8.
  assert.equal(verdict(SONG_COLUMNS, song({ artist_id: 'A'.repeat(64) })), 1, '64 bytes');
  assert.equal(verdict(SONG_COLUMNS, song({ artist_id: '\u00e9'.repeat(32) })), 1, '64 bytes in 32 characters');
  assert.equal(verdict(SONG_COLUMNS, song({ artist_id: 'A'.repeat(65) })), 0, '65 bytes');
  assert.equal(verdict(SONG_COLUMNS, song({ artist_id: '\u00e9'.repeat(33) })), 0, '66 bytes in 33 characters');
  assert.equal(
    verdict(SONG_COLUMNS, song().replace('"ARGCY', '"\\u0041RGCY')),
    0,
    'an escape: the full check measures',
  );
  assert.deepEqual(checkSong(JSON.parse(song({ artist_id: 'A'.repeat(65) }))), {
    ok: false,
    reason: "'artist_id' is longer than 64 bytes",
  });
  assert.equal(checkSong(JSON.parse(song({ artist_id: '\u00e9'.repeat(32) }))).ok, true);
});

function stage(kind: 'songs' | 'events', inputs: Buffer[], fast: boolean) {
  const accepted = new SpillBuffer();
  const rejects = new SpillBuffer();
  const records = new FileRecords('in.json', 3, kind, accepted, rejects);
  let fastAccepted = 0;
  const scan = records.acceptedByScan.bind(records);
  records.acceptedByScan = (line, bytes) => {
    const yes = fast && scan(line, bytes);
    if (yes) fastAccepted++;
    return yes;
  };
  if (kind === 'events') {
    const splitter = new LineSplitter((line, bytes, size) => records.line(line, bytes, size));
    for (const input of inputs) splitter.push(input);
    splitter.end();
  } else {
    for (const input of inputs) songFileRecords(input, records);
  }
  return {
    accepted: accepted.bufferedBytes,
    rejects: rejects.buffered,
    counts: [records.records, records.rejected, records.plays],
    fastAccepted,
  };
}

// Deterministic pseudo-random mutations (mulberry32).
function prng(seed: number) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const TOKENS = [
  '"',
  '\\',
  '\\u',
  '\\ud83d',
  '\\uD800',
  '\\u00e9',
  '\\u0000',
  '-0',
  '-0.0',
  'e5',
  '1',
  '0',
  '.',
  ',',
  '}',
  '{',
  '[',
  ' ',
  '\t',
  '\r',
  'null',
  'true',
  '"NextSong"',
  '""',
  ':',
  '\u00e9',
  '1e400',
  '9999999999',
  '"_file":1',
  '"x":1',
  '"ts":5',
  '\ufeff',
];
const VALUES = [
  'null',
  '""',
  '"NextSong"',
  '1',
  '-0',
  '-0.0',
  '-0.000',
  '1.5',
  '1.0',
  '"12"',
  'true',
  '"a\\u00e9"',
  '"\\ud800"',
  '0.30000000000000004',
  '1537186850796.0',
  '-12.5',
  '1e5',
  '2147483647',
  '2147483648',
  '9999999999',
  '9007199254740993',
  '123456789012345',
  '1234567890123456',
  '99999999999999999999',
  '{}',
  '[1]',
  `"${'A'.repeat(64)}"`,
  `"${'A'.repeat(65)}"`,
  `"${'\u00e9'.repeat(33)}"`,
];

function mutate(text: string, rand: () => number): string {
  const pick = <T>(a: readonly T[]) => a[Math.floor(rand() * a.length)] as T;
  let t = text;
  for (let n = 1 + Math.floor(rand() * 3); n > 0; n--) {
    const i = Math.floor(rand() * (t.length + 1));
    const r = rand();
    if (r < 0.35) t = t.slice(0, i) + pick(TOKENS) + t.slice(i);
    else if (r < 0.55) t = t.slice(0, i) + t.slice(i + 1 + Math.floor(rand() * 3));
    else {
      const members = [...t.matchAll(/"(\w+)":\s*("(?:[^"\\]|\\.)*"|[-\d.eE+]+|null|true|false)/g)];
      if (members.length === 0) continue;
      const m = pick(members);
      const at = (m.index ?? 0) + m[0].length - (m[2] ?? '').length;
      if (r < 0.85) t = t.slice(0, at) + pick(VALUES) + t.slice(at + (m[2] ?? '').length);
      else if (r < 0.93) t = t.replace(/}\s*$/, `, ${m[0]}}`);
      else t = t.replace(`${m[0]}, `, '').replace(`${m[0]},`, '');
    }
  }
  return t;
}

let dir: string;
let db: DuckDBInstance;
let conn: DuckDBConnection;
before(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'tempoflow-record-scan-'));
  db = await DuckDBInstance.create(':memory:', { threads: '1' });
  conn = await db.connect();
});
after(async () => {
  conn.closeSync();
  db.closeSync();
  await fs.rm(dir, { recursive: true, force: true });
});

/** The staged rows as DuckDB reads them (the staging query's types), every value as text (`-0.0` stays). */
async function rows(kind: 'songs' | 'events', ndjson: Buffer, name: string): Promise<string> {
  if (ndjson.length === 0) return '[]';
  const columns = kind === 'songs' ? SONG_COLUMNS : EVENT_COLUMNS;
  const file = path.join(dir, name);
  await fs.writeFile(file, ndjson);
  const types = columns.map((c) => `${sqlString(c.name)}: ${sqlString(c.type)}`).join(', ');
  const list = columns.map((c) => `"${c.name}"::VARCHAR`).join(', ');
  const reader = await conn.runAndReadAll(
    `SELECT ${list} FROM read_json(${sqlString(file)}, columns = {${types}}, format = 'newline_delimited')`,
  );
  return JSON.stringify(reader.getRows());
}

void test('staging with the scan gives the same rejects, counts and staged values as the full check alone', async () => {
  const rand = prng(10);
  let fastAccepted = 0;
  for (let round = 0; round < 400; round++) {
    const kind = round % 4 === 3 ? 'songs' : 'events';
    let inputs: Buffer[];
    if (kind === 'events') {
      const lines = Array.from({ length: 30 }, () => (rand() < 0.6 ? mutate(event(), rand) : event()));
      const bytes = Buffer.from(lines.join(rand() < 0.2 ? '\r\n' : '\n'));
      if (rand() < 0.2) bytes[Math.floor(rand() * bytes.length)] = [0xff, 0xc3, 0x80, 0xed][round % 4] as number;
      inputs = [bytes];
    } else {
      inputs = Array.from({ length: 10 }, () => {
        const layout = rand();
        let text = song();
        if (layout < 0.3) text = text.replace(/, "/g, ',\n  "');
        else if (layout < 0.5) text = text.replace(/, "/g, ',\r\n\t"') + '\n';
        return Buffer.from(rand() < 0.7 ? mutate(text, rand) : text);
      });
    }
    const fast = stage(kind, inputs, true);
    const full = stage(kind, inputs, false);
    const where = `round ${round} (${kind}): ${Buffer.concat(inputs).toString('utf8').slice(0, 2000)}`;
    assert.deepEqual(fast.rejects, full.rejects, where);
    assert.deepEqual(fast.counts, full.counts, where);
    assert.equal(await rows(kind, fast.accepted, 'fast.ndjson'), await rows(kind, full.accepted, 'full.ndjson'), where);
    fastAccepted += fast.fastAccepted;
  }
  assert.ok(fastAccepted > 3000, `the fast path took ${fastAccepted} records`);
});

void test('a line DuckDB certifies (eventLinePattern) is one the scan accepts as it is, a play when it says so', async () => {
  const pattern = eventLinePattern();
  const rand = prng(30);
  const compact = (extra: Record<string, unknown> = {}) => eventRecord(3, extra);
  const lines = [
    compact(),
    compact({ page: 'Home', userId: '' }),
    compact({ firstName: null, lastName: null, length: null, song: null, artist: null, page: 'Login', userId: '' }),
    compact({ page: 'NextSongs' }),
    compact({ page: 'NextSon' }),
    compact({ page: 'NextSonG' }),
    compact({ userId: '' }), // a play without a user: a reject
    ...Array.from({ length: 3000 }, () => mutate(rand() < 0.5 ? compact() : compact({ page: 'Home' }), rand)),
  ]
    // As a file holds them: UTF-8 (a lone surrogate becomes U+FFFD), one line each.
    .map((l) => Buffer.from(l).toString('utf8'))
    .filter((l) => !l.includes('\n'));
  const instance = await DuckDBInstance.create(':memory:');
  const conn = await instance.connect();
  try {
    await conn.run('CREATE TABLE t (i INTEGER, line VARCHAR)');
    const appender = await conn.createAppender('t');
    lines.forEach((line, i) => {
      appender.appendInteger(i);
      appender.appendVarchar(line);
      appender.endRow();
    });
    appender.closeSync();
    const rows = (
      await conn.runAndReadAll(
        `SELECT i, regexp_full_match(line, ${sqlString(pattern)}) AS certified, ` +
          `contains(line, '"page":"NextSong"') AS play FROM t ORDER BY i`,
      )
    ).getRowObjectsJS() as { i: number; certified: boolean; play: boolean }[];
    let plays = 0;
    let others = 0;
    for (const { i, certified, play } of rows) {
      if (!certified) continue;
      if (play) plays++;
      else others++;
      assert.equal(verdict(EVENT_COLUMNS, lines[i]!), play ? 2 : 1, lines[i]);
    }
    assert.deepEqual(
      rows.slice(0, 7).map((r) => r.certified),
      [true, true, true, true, true, true, false],
    );
    // Mutations mostly break lines; these bounds keep the test from passing on nothing.
    assert.ok(plays > 50 && others > 50, `the pattern certified ${plays} plays, ${others} others`);
    assert.ok(plays + others < lines.length, 'and left the others');
  } finally {
    conn.closeSync();
    instance.closeSync();
  }
});
