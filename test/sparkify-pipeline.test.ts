import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { DuckDBInstance } from '@duckdb/node-api';
import { createStore, type Store } from '../storage';
import { sqlString } from '../activities/sparkify/duckdb';
import {
  InputDataError,
  QualityCheckError,
  RejectRateError,
  TABLES,
  assessRejects,
  buildTables,
  generateSparkify,
  listInputs,
  parseEventFile,
  publish,
  readPublished,
  runPaths,
  runSparkifyPipeline,
  runToken,
  stageLogs,
  stageSongs,
  validate,
  type GenerateExpectations,
  type TableName,
} from '../activities/sparkify';
import { eventRecord } from './event-record';

const store = createStore();
const tmp = (name: string) => fs.mkdtemp(path.join(os.tmpdir(), `tempoflow-${name}-`));

async function lake(output: string): Promise<Record<TableName, Record<string, unknown>[]>> {
  const out = {} as Record<TableName, Record<string, unknown>[]>;
  for (const t of TABLES) out[t] = await readPublished(store, output, t);
  return out;
}

async function filesUnder(dir: string): Promise<string[]> {
  return (await store.list(dir)).map((o) => o.key);
}

void describe('pipeline on generated data (local directories)', () => {
  let input: string;
  let output: string;
  let exp: GenerateExpectations;
  let first: Record<TableName, Record<string, unknown>[]>;

  before(async () => {
    input = await tmp('in');
    output = await tmp('out');
    exp = await generateSparkify({ out: input, songs: 300, events: 20_000, days: 5, seed: 42, duplicates: 6 });
  });
  after(async () => {
    await fs.rm(input, { recursive: true, force: true });
    await fs.rm(output, { recursive: true, force: true });
  });

  void test('tables have exactly the rows the generator expects', async () => {
    const run = await runSparkifyPipeline({ store, input, output, runId: 'run-1' });
    assert.equal(run.list.songFiles, exp.songFiles);
    assert.equal(run.list.logFiles, exp.logFiles);
    assert.equal(run.list.logChunks.length, 1, '5 days of logs make one chunk of up to 16 files');
    assert.equal(
      run.events.reduce((a, r) => a + r.records, 0),
      exp.eventLines,
    );
    assert.deepEqual(run.build.rows, {
      songs: exp.songs,
      artists: exp.artists,
      users: exp.users,
      time: exp.startTimes,
      songplays: exp.nextSongEvents,
    });
    assert.ok(run.quality.passed);
    first = await lake(output);
    assert.equal(first.songplays.length, exp.nextSongEvents, 'a duplicated event is one songplay');
    assert.ok(exp.nextSongLines > exp.nextSongEvents);
    assert.equal(first.songplays.filter((r) => r.song_id !== null).length, exp.matchedPlays);
    assert.equal(new Set(first.songplays.map((r) => r.songplay_id)).size, first.songplays.length);
    // Every user's level is the one of their latest play, including those who upgraded.
    const levels = Object.fromEntries(first.users.map((u) => [String(u.user_id), u.level]));
    assert.deepEqual(levels, exp.finalLevels);
    assert.ok(exp.levelChangedUsers.some((u) => levels[u] === 'paid'));
    // time: ISO week and weekday (Monday 1 .. Sunday 7); 2018-11-04 was a Sunday in ISO week 44.
    const sunday = first.time.find((r) => (r.start_time as Date).toISOString().startsWith('2018-11-04'));
    assert.equal(sunday?.weekday, 7n);
    assert.equal(sunday?.week, 44n);
    assert.equal(sunday?.day, 4n);

    // Published layout: hive partitions; run metadata under `_` names only; staging removed.
    const keys = await filesUnder(output);
    assert.ok(
      keys.some((k) => /^songs\/year=\d+\/artist_id=AR[A-Z0-9]+\/part-[0-9a-f]+-[0-9a-f]+-\d+\.parquet$/.test(k)),
    );
    assert.ok(keys.some((k) => /^time\/year=2018\/month=11\/[^/]+\.parquet$/.test(k)));
    assert.ok(keys.some((k) => /^songplays\/year=2018\/month=11\/[^/]+\.parquet$/.test(k)));
    assert.ok(keys.some((k) => /^artists\/[^/]+\.parquet$/.test(k)));
    assert.ok(keys.includes('_runs/run-1/quality.json'));
    assert.ok(!keys.some((k) => k.startsWith('_staging/')), 'the run staging area is deleted after publish');
    assert.ok(keys.filter((k) => !k.startsWith('_')).every((k) => TABLES.some((t) => k.startsWith(`${t}/`))));
  });

  void test('songs laid out by several DuckDB instances at once are the files one instance writes, byte for byte', async () => {
    // publish splits the songs layout by partition over `threads` instances (at most 4, and no more than
    // `instances` may be open at once).
    const digests: string[][] = [];
    for (const threads of [1, 3]) {
      const lakeDir = await tmp(`layout-${threads}`);
      const duckdb = { threads, instances: threads };
      await runSparkifyPipeline({ store, input, output: lakeDir, runId: 'layout', duckdb });
      const songsDir = path.join(lakeDir, 'songs');
      const files = (await filesUnder(songsDir)).filter((k) => k.endsWith('.parquet'));
      digests.push(
        await Promise.all(
          files.map(
            async (k) =>
              `${path.dirname(k)} ${createHash('md5')
                .update(await fs.readFile(path.join(songsDir, k)))
                .digest('hex')}`,
          ),
        ),
      );
      await fs.rm(lakeDir, { recursive: true, force: true });
    }
    const folders = digests[0]!.map((d) => d.split(' ')[0]);
    assert.ok(folders.length > 100, `${folders.length} song partitions`);
    assert.equal(new Set(folders).size, folders.length, 'one file per partition');
    assert.deepEqual(digests[1]!.sort(), digests[0]!.sort());
  });

  void test('a second run of the same input gives identical tables, keeping the unchanged songs', async () => {
    const run = await runSparkifyPipeline({ store, input, output, runId: 'run-2' });
    assert.equal(run.list.songsReusedFrom, 'run-1');
    assert.deepEqual(run.list.songChunks, [], 'unchanged song files are not staged again');
    assert.deepEqual(Object.keys(run.build.rows).sort(), ['songplays', 'time', 'users']);
    const second = await lake(output);
    assert.deepEqual(second, first);
    // The previous run's play tables are gone, not merged in; songs and artists are still run-1's files.
    const tokenOf = (k: string) => /part-([0-9a-f]+)-/.exec(k)?.[1];
    const tableFiles = (await filesUnder(output)).filter((k) => k.endsWith('.parquet') && !k.startsWith('_'));
    const tokens = (prefixes: string[]) =>
      new Set(tableFiles.filter((k) => prefixes.some((p) => k.startsWith(`${p}/`))).map(tokenOf));
    assert.deepEqual([...tokens(['songs', 'artists'])], [runToken('run-1')]);
    assert.deepEqual([...tokens(['users', 'time', 'songplays'])], [runToken('run-2')]);
  });

  void test('songs and artists are rebuilt when a song file changes, or when asked', async () => {
    const songFile = (await store.list(path.join(input, 'song_data'))).find((o) => o.key.endsWith('.json'));
    assert.ok(songFile);
    const original = await store.read(songFile.uri);
    const song = JSON.parse(original.toString()) as { song_id: string; title: string };
    await store.write(songFile.uri, JSON.stringify({ ...song, title: `${song.title} (Remastered)` }));
    try {
      const changed = await runSparkifyPipeline({ store, input, output, runId: 'run-changed' });
      assert.equal(changed.list.songsReusedFrom, null);
      assert.equal(changed.build.rows.songs, exp.songs);
      const titles = (await readPublished(store, output, 'songs')).filter((s) => s.song_id === song.song_id);
      assert.deepEqual(
        titles.map((s) => s.title),
        [`${song.title} (Remastered)`],
      );
    } finally {
      await store.write(songFile.uri, original);
    }
    const restored = await runSparkifyPipeline({ store, input, output, runId: 'run-restored' });
    assert.equal(restored.list.songsReusedFrom, null, 'the rewritten file has a new ETag: songs are rebuilt');
    assert.deepEqual(await lake(output), first);
    const again = await runSparkifyPipeline({ store, input, output, runId: 'run-again' });
    assert.equal(again.list.songsReusedFrom, 'run-restored');
    const forced = await runSparkifyPipeline({ store, input, output, runId: 'run-forced', rebuildSongs: true });
    assert.equal(forced.list.songsReusedFrom, null);
    assert.equal(forced.build.rows.artists, exp.artists);
    assert.deepEqual(await lake(output), first);
    const state = JSON.parse((await store.read(path.join(output, '_state/songs.json'))).toString()) as {
      runId: string;
      files: number;
    };
    assert.deepEqual([state.runId, state.files], ['run-forced', exp.songFiles]);
  });

  void test('a data interval selects the daily log files in [start, end)', async () => {
    const out = await tmp('interval');
    const run = await runSparkifyPipeline({
      store,
      input,
      output: out,
      runId: 'interval',
      dataInterval: { start: '2018-11-02T00:00:00Z', end: '2018-11-04T00:00:00Z' },
    });
    assert.equal(run.list.logFiles, 2);
    assert.equal(run.list.skippedLogFiles, 3);
    const lines = (exp.linesPerDay['2018-11-02'] ?? 0) + (exp.linesPerDay['2018-11-03'] ?? 0);
    assert.equal(
      run.events.reduce((a, r) => a + r.records, 0),
      lines,
    );
    const plays = await readPublished(store, out, 'songplays');
    assert.ok(plays.length > 0);
    for (const p of plays) {
      const iso = (p.start_time as Date).toISOString();
      assert.ok(iso >= '2018-11-02' && iso < '2018-11-04', iso);
    }
    await fs.rm(out, { recursive: true, force: true });
  });

  void test('a failing publish leaves the previous lake as it was, and can be run again', async () => {
    const otherInput = await tmp('in2');
    await generateSparkify({ out: otherInput, songs: 50, events: 3000, days: 2, seed: 7 });
    let copies = 0;
    // Fails the third copy into the lake: some new files are in place by then.
    const flaky: Store = {
      ...store,
      copy: async (from, to) => {
        if (++copies === 3) throw new Error('disk went away');
        return store.copy(from, to);
      },
    };
    await assert.rejects(
      runSparkifyPipeline({ store: flaky, input: otherInput, output, runId: 'run-3' }),
      /disk went away/,
    );
    assert.deepEqual(await lake(output), first);
    assert.ok((await filesUnder(runPaths(output, 'run-3').tables)).length > 0, 'the staged tables are kept');
    // Retrying the publish step completes it with the new run's tables.
    await publish({ store, output, runId: 'run-3' });
    const now = await lake(output);
    assert.notDeepEqual(now.songs, first.songs);
    assert.equal(now.songs.length, 50);
    await fs.rm(otherInput, { recursive: true, force: true });
  });
});

void test('text that is not valid Unicode is a reject, not a failed load', () => {
  const lone = '{"page": "Home", "itemInSession": 0, "sessionId": 1, "ts": 1, "userId": "", "firstName": "\\ud800"}';
  const paired = lone.replace('\\ud800', '\\ud83d\\ude00');
  const parsed = parseEventFile('f.json', `${lone}\n${paired}\n`);
  assert.deepEqual(
    parsed.records.map((r) => (JSON.parse(r) as { firstName: string }).firstName),
    ['\u{1F600}'],
  );
  assert.deepEqual(
    parsed.rejects.map((r) => [r.line, r.reason]),
    [[1, "'firstName' is not valid Unicode (a lone surrogate)"]],
  );
});

void describe('bad input records', () => {
  let input: string;
  let output: string;
  before(async () => {
    input = await tmp('bad-in');
    output = await tmp('bad-out');
    const song = (id: string, extra: Record<string, unknown> = {}) => ({
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
    const w = (rel: string, text: string) => store.write(path.join(input, rel), text);
    await w('song_data/A/A/A/TRAAA1.json', JSON.stringify(song('SOAAA1')));
    // Pretty-printed: accepted.
    await w('song_data/A/A/B/TRAAB1.json', JSON.stringify(song('SOAAB1', { title: 'Pretty' }), null, 2));
    // Truncated JSON and a duration of the wrong type: rejected.
    await w('song_data/A/A/C/TRAAC1.json', '{"num_songs": 1, "artist_id": "ARX", ');
    await w('song_data/A/B/A/TRABA1.json', JSON.stringify(song('SOABA1', { duration: '200.5' })));
    // Hidden/checkpoint files are not input at all.
    await w('song_data/A/A/A/.TRAAA2.json', 'garbage');
    await w('song_data/A/A/A/_TRAAA3.json', 'garbage');
    await w('song_data/A/A/A/TRAAA1.json.crc', 'garbage');

    const ev = (i: number, extra: Record<string, unknown> = {}) =>
      eventRecord(i, { song: 'Title SOAAA1', userAgent: 'UA', ...extra });
    const day1 = [
      ev(0),
      ev(1),
      '{"artist": "broken line", "auth": ',
      ev(2, { ts: 'yesterday' }),
      ev(3, { sessionId: undefined }),
      ev(4, { userId: '', page: 'NextSong' }),
      ev(5, { page: 'Home', artist: null, song: null, length: null }),
      ev(1), // the same event delivered twice
      '',
    ].join('\n');
    await w('log_data/2018/11/2018-11-01-events.json', day1);
    await w('log_data/2018/11/2018-11-02-events.json', ''); // empty file
    await w('log_data/2018/11/.2018-11-03-events.json', ev(9));
    await w('log_data/2018/11/_SUCCESS', '');
  });
  after(async () => {
    await fs.rm(input, { recursive: true, force: true });
    await fs.rm(output, { recursive: true, force: true });
  });

  void test('land in _rejects with file, line and reason; hidden files are skipped; every record counted', async () => {
    const list = await listInputs({ store, input, output, runId: 'bad' });
    assert.equal(list.songFiles, 4);
    assert.equal(list.logFiles, 2);
    const progress: number[] = [];
    const songs = await stageSongs({ store, manifest: list.songChunks[0] ?? '', output, runId: 'bad' });
    const events = await stageLogs({
      store,
      manifest: list.logChunks[0] ?? '',
      output,
      runId: 'bad',
      onProgress: (p) => progress.push(p.filesDone),
    });
    assert.deepEqual([songs.files, songs.records, songs.rejected], [4, 2, 2]);
    assert.deepEqual([events.files, events.records, events.rejected], [2, 4, 4]);
    assert.equal(events.plays, 3);
    assert.deepEqual(progress.sort(), [1, 2]);

    const rejects = (await store.read(events.rejects ?? '')).toString().trim().split('\n');
    const parsed = rejects.map((l) => JSON.parse(l) as { file: string; line: number; reason: string; raw: string });
    assert.deepEqual(
      parsed.map((r) => r.line),
      [3, 4, 5, 6],
    );
    assert.ok(parsed.every((r) => r.file.endsWith('2018-11-01-events.json')));
    assert.match(parsed[0]?.reason ?? '', /malformed JSON/);
    assert.match(parsed[1]?.reason ?? '', /'ts' must be an integer/);
    assert.match(parsed[2]?.reason ?? '', /missing required field 'sessionId'/);
    assert.match(parsed[3]?.reason ?? '', /NextSong' event without a userId/);
    assert.equal(parsed[0]?.raw, '{"artist": "broken line", "auth": ');
    const songRejects = (await store.read(songs.rejects ?? '')).toString().trim().split('\n');
    assert.equal(songRejects.length, 2);
    assert.match(songRejects.join('\n'), /TRAAC1\.json.*malformed JSON/);
    assert.match(songRejects.join('\n'), /TRABA1\.json.*'duration' must be a number/);
    assert.ok(songs.rejects?.endsWith('/_rejects/bad/songs-part-00000.jsonl'));

    // 6 rejects of 12 records is far over the default 1%: the run fails, naming the counts.
    const verdict = assessRejects([songs, events]);
    assert.equal(verdict.passed, false);
    assert.match(verdict.message, /6 of 12 rejected \(50\.00%\)/);
    assert.equal(assessRejects([songs, events], 0.5).passed, true);
    await assert.rejects(runSparkifyPipeline({ store, input, output, runId: 'bad-2' }), (err: unknown) => {
      assert.ok(err instanceof RejectRateError && err instanceof InputDataError);
      assert.equal(err.name, 'RejectRateError');
      assert.match(err.message, /6 of 12 rejected/);
      return true;
    });
    assert.deepEqual(
      (await filesUnder(output)).filter((k) => !k.startsWith('_')),
      [],
      'nothing published',
    );

    // With a lenient limit the good records make tables; the duplicate play counts once.
    const run = await runSparkifyPipeline({ store, input, output, runId: 'bad-3', maxRejectRate: 0.6 });
    assert.deepEqual(run.build.rows, { songs: 2, artists: 1, users: 1, time: 2, songplays: 2 });
    const plays = await readPublished(store, output, 'songplays');
    assert.deepEqual(
      plays.map((p) => p.song_id),
      ['SOAAA1', 'SOAAA1'],
    );
  });
});

void describe('validation', () => {
  void test('detects duplicate keys and dangling references, and the lake stays as it was', async () => {
    const input = await tmp('val-in');
    const output = await tmp('val-out');
    await generateSparkify({ out: input, songs: 60, events: 2000, days: 2, seed: 9, matchRate: 0.5 });
    await runSparkifyPipeline({ store, input, output, runId: 'good' });
    const lakeBefore = await lake(output);

    const runId = 'tampered';
    const list = await listInputs({ store, input, output, runId, rebuildSongs: true });
    const stages = [
      ...(await Promise.all(list.songChunks.map((m) => stageSongs({ store, manifest: m, output, runId })))),
      ...(await Promise.all(list.logChunks.map((m) => stageLogs({ store, manifest: m, output, runId })))),
    ];
    await buildTables({ store, output, runId });
    const tables = runPaths(output, runId).tables;
    const ok = await validate({ store, output, runId, stageResults: stages });
    assert.equal(ok.passed, true, JSON.stringify(ok.checks));

    // Every user twice, and one matched song gone.
    const [usersFile] = await store.list(`${tables}/users`);
    await store.copy(usersFile?.uri ?? '', `${tables}/users/part-copy.parquet`);
    const [songsFile, ...more] = await store.list(`${tables}/songs`);
    assert.ok(songsFile && more.length === 0, 'songs are staged as one file');
    const victim = lakeBefore.songplays.find((p) => p.song_id !== null)?.song_id;
    assert.ok(typeof victim === 'string');
    const db = await (await DuckDBInstance.create(':memory:')).connect();
    const file = sqlString(songsFile.uri);
    await db.run(`CREATE TABLE kept AS SELECT * FROM read_parquet(${file}) WHERE song_id <> ${sqlString(victim)}`);
    await db.run(`COPY kept TO ${file} (FORMAT parquet)`);
    db.closeSync();

    const bad = await validate({ store, output, runId, stageResults: stages });
    assert.equal(bad.passed, false);
    const failed = bad.checks.filter((c) => !c.passed).map((c) => c.name);
    assert.ok(failed.includes('users.user_id unique and not null'), failed.join());
    assert.ok(failed.includes('songplays.song_id in songs'), failed.join());
    const orphans = lakeBefore.songplays.filter((p) => p.song_id === victim).length;
    assert.equal(
      bad.checks.find((c) => c.name === 'songplays.song_id in songs')?.detail,
      `${orphans} songplays rows whose song_id is not in songs`,
    );
    assert.ok(!failed.includes('songplays rows = distinct staged NextSong events'));
    const report = JSON.parse((await store.read(bad.report)).toString()) as { passed: boolean };
    assert.equal(report.passed, false);
    // Reported counts that disagree with the staged data fail too.
    const wrong = await validate({
      store,
      output,
      runId,
      stageResults: stages.map((s) => ({ ...s, records: s.records + 1 })),
    });
    assert.ok(wrong.checks.some((c) => c.name === 'staged events records = reported by staging' && !c.passed));
    assert.deepEqual(await lake(output), lakeBefore);
    await fs.rm(input, { recursive: true, force: true });
    await fs.rm(output, { recursive: true, force: true });
  });

  void test('the pipeline refuses to publish a run that fails validation', async () => {
    const input = await tmp('val2-in');
    const output = await tmp('val2-out');
    await generateSparkify({ out: input, songs: 20, events: 500, days: 1, seed: 1 });
    // A store that corrupts the built users table as it is uploaded (one user twice).
    const corrupting: Store = {
      ...store,
      uploadDir: async (dir, prefix) => {
        const n = await store.uploadDir(dir, prefix);
        // Tables are uploaded one by one (build-partitioned.ts): the users table's own upload.
        if (!prefix.endsWith('/users')) return n;
        const users = (await store.list(prefix))[0];
        if (users) await store.copy(users.uri, `${prefix}/dup.parquet`);
        return n;
      },
    };
    await assert.rejects(runSparkifyPipeline({ store: corrupting, input, output, runId: 'x' }), (err: unknown) => {
      assert.ok(err instanceof QualityCheckError);
      assert.match(err.message, /users\.user_id unique and not null/);
      return true;
    });
    assert.deepEqual(
      (await filesUnder(output)).filter((k) => !k.startsWith('_')),
      [],
    );
    await fs.rm(input, { recursive: true, force: true });
    await fs.rm(output, { recursive: true, force: true });
  });
});

void describe('rules', () => {
  void test('an artist with several spellings gets one deterministic row; cancelled calls stop', async () => {
    const input = await tmp('rules-in');
    const output = await tmp('rules-out');
    const song = (file: string, id: string, name: string, lat: number | null, location: string) =>
      store.write(
        path.join(input, 'song_data', file),
        JSON.stringify({
          num_songs: 1,
          artist_id: 'ARSPELL0000000001',
          artist_latitude: lat,
          artist_longitude: lat === null ? null : -lat,
          artist_location: location,
          artist_name: name,
          song_id: id,
          title: `t ${id}`,
          duration: 100,
          year: 2000,
        }),
      );
    // Listed first and alphabetically first, but without coordinates: not chosen.
    await song('A/A/A/TRAAA.json', 'SO1', 'Aardvark Band', null, '');
    await song('A/A/B/TRAAB.json', 'SO2', 'The Zebras', 12.5, 'Nairobi');
    await song('A/A/C/TRAAC.json', 'SO3', 'Zebras', 12.5, 'Nairobi');
    await store.write(path.join(input, 'log_data/2018/11/2018-11-01-events.json'), '');
    const run = await runSparkifyPipeline({ store, input, output, runId: 'spell' });
    assert.equal(run.build.rows.artists, 1);
    const [artist] = await readPublished(store, output, 'artists');
    assert.deepEqual(artist, {
      artist_id: 'ARSPELL0000000001',
      name: 'The Zebras',
      location: 'Nairobi',
      latitude: 12.5,
      longitude: -12.5,
    });
    assert.equal(run.build.rows.songplays, 0);

    const list = await listInputs({ store, input, output, runId: 'cancelled', rebuildSongs: true });
    const aborted = AbortSignal.abort();
    await assert.rejects(
      stageSongs({ store, manifest: list.songChunks[0] ?? '', output, runId: 'cancelled', signal: aborted }),
      { name: 'AbortError' },
    );
    await assert.rejects(buildTables({ store, output, runId: 'cancelled', signal: aborted }), { name: 'AbortError' });
    await fs.rm(input, { recursive: true, force: true });
    await fs.rm(output, { recursive: true, force: true });
  });
});
