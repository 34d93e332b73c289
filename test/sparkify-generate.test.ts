import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { createStore } from '../storage';
import { generateSparkify } from '../activities/sparkify';

const SAMPLE = '/work/shared/data/udacity-sample';

async function tempDir(): Promise<string> {
  return fs.mkdtemp(path.join(os.tmpdir(), 'tempoflow-gen-'));
}

/** Every file under a directory, as relative path -> contents. */
async function snapshot(dir: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const o of await createStore().list(dir)) out.set(o.key, readFileSync(o.uri, 'utf8'));
  return out;
}

function events(files: Map<string, string>): Record<string, unknown>[] {
  return [...files]
    .filter(([k]) => k.startsWith('log_data/'))
    .flatMap(([, text]) => text.split('\n').filter((l) => l.trim() !== ''))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

void test('same seed, same bytes; another seed, other data', async () => {
  const [a, b, c] = [await tempDir(), await tempDir(), await tempDir()];
  const opts = { songs: 40, events: 1500, days: 3, duplicates: 2 };
  const ea = await generateSparkify({ ...opts, out: a, seed: 11 });
  const eb = await generateSparkify({ ...opts, out: b, seed: 11 });
  const ec = await generateSparkify({ ...opts, out: c, seed: 12 });
  assert.deepEqual(eb, ea);
  assert.deepEqual(await snapshot(b), await snapshot(a));
  assert.notDeepEqual(await snapshot(c), await snapshot(a));
  assert.notDeepEqual(ec, ea);
  for (const d of [a, b, c]) await fs.rm(d, { recursive: true, force: true });
});

void test('Udacity layout, and expectations that match the files', async () => {
  const dir = await tempDir();
  const exp = await generateSparkify({
    out: dir,
    songs: 120,
    events: 6000,
    days: 4,
    seed: 5,
    duplicates: 4,
    startDate: '2018-11-29',
  });
  const files = await snapshot(dir);
  const songKeys = [...files.keys()].filter((k) => k.startsWith('song_data/'));
  const logKeys = [...files.keys()].filter((k) => k.startsWith('log_data/'));
  assert.equal(songKeys.length, 120);
  for (const k of songKeys) {
    const m = /^song_data\/([A-Z])\/([A-Z])\/([A-Z])\/TR([A-Z])([A-Z])([A-Z])[A-Z0-9]{13}\.json$/.exec(k);
    assert.ok(m, k);
    assert.deepEqual([m[1], m[2], m[3]], [m[4], m[5], m[6]], `directories are the track id's letters: ${k}`);
  }
  // Days run over a month end: each file sits under its own year/month.
  assert.deepEqual(logKeys, [
    'log_data/2018/11/2018-11-29-events.json',
    'log_data/2018/11/2018-11-30-events.json',
    'log_data/2018/12/2018-12-01-events.json',
    'log_data/2018/12/2018-12-02-events.json',
  ]);

  const songs = songKeys.map((k) => JSON.parse(files.get(k) ?? '') as Record<string, unknown>);
  const evs = events(files);
  const plays = evs.filter((e) => e.page === 'NextSong');
  const playKey = (e: Record<string, unknown>) => [e.ts, e.userId, e.sessionId, e.itemInSession].join('|');
  const distinctPlays = new Map(plays.map((e) => [playKey(e), e]));
  const songIndex = new Set(songs.map((s) => [s.title, s.artist_name, s.duration].join('\u0000')));

  assert.equal(exp.eventLines, evs.length);
  assert.equal(exp.nextSongLines, plays.length);
  assert.equal(exp.nextSongEvents, distinctPlays.size);
  assert.equal(plays.length - distinctPlays.size, 4, 'the requested duplicates are in the files');
  assert.equal(exp.songs, new Set(songs.map((s) => s.song_id)).size);
  assert.equal(exp.artists, new Set(songs.map((s) => s.artist_id)).size);
  assert.ok(exp.artists < exp.songs, 'artists share songs');
  assert.equal(exp.users, new Set(plays.map((e) => e.userId)).size);
  assert.equal(exp.startTimes, new Set(plays.map((e) => e.ts)).size);
  const matched = [...distinctPlays.values()].filter((e) => songIndex.has([e.song, e.artist, e.length].join('\u0000')));
  assert.equal(exp.matchedPlays, matched.length);
  const share = matched.length / distinctPlays.size;
  assert.ok(share > 0.2 && share < 0.4, `about 30% of plays match a song (got ${share})`);

  // Realism: other pages, logged-out visitors with an empty userId, users who upgraded.
  const pages = new Set(evs.map((e) => e.page));
  for (const p of ['NextSong', 'Home', 'Logout', 'Login']) assert.ok(pages.has(p), `page ${p}`);
  const guests = evs.filter((e) => e.userId === '');
  assert.ok(guests.length > 0 && guests.every((e) => e.auth === 'Logged Out' && e.page !== 'NextSong'));
  assert.ok(exp.levelChangedUsers.length > 0, 'some users change level');
  for (const [uid, level] of Object.entries(exp.finalLevels)) {
    const latest = plays.filter((e) => e.userId === uid).sort((x, y) => Number(y.ts) - Number(x.ts))[0];
    assert.equal(latest?.level, level, `user ${uid}`);
  }
  for (const uid of exp.levelChangedUsers) {
    assert.equal(new Set(plays.filter((e) => e.userId === uid).map((e) => e.level)).size, 2);
  }
  // Each day's file only holds that day's events, in time order.
  for (const k of logKeys) {
    const day = /(\d{4}-\d{2}-\d{2})-events/.exec(k)?.[1];
    const ts = (files.get(k) ?? '').split('\n').map((l) => Number((JSON.parse(l) as { ts: number }).ts));
    assert.ok(
      ts.every((t) => new Date(t).toISOString().startsWith(day ?? 'x')),
      k,
    );
    assert.deepEqual(
      ts,
      [...ts].sort((x, y) => x - y),
    );
    assert.equal(exp.linesPerDay[day ?? ''], ts.length);
  }
  await fs.rm(dir, { recursive: true, force: true });
});

const sampleMissing = existsSync(SAMPLE) ? false : `the Udacity sample is not at ${SAMPLE}: skipped`;

void test('fields, order and JSON types are those of the Udacity sample', { skip: sampleMissing }, async () => {
  const dir = await tempDir();
  await generateSparkify({ out: dir, songs: 30, events: 800, days: 1, seed: 3 });
  const files = await snapshot(dir);
  const firstFile = (root: string): string => {
    const entries = readdirSync(root, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name));
    const e = entries[0];
    if (!e) throw new Error(`empty ${root}`);
    return e.isDirectory() ? firstFile(path.join(root, e.name)) : path.join(root, e.name);
  };
  const sampleSong = JSON.parse(readFileSync(firstFile(path.join(SAMPLE, 'song_data')), 'utf8')) as Record<
    string,
    unknown
  >;
  const sampleLines = readFileSync(firstFile(path.join(SAMPLE, 'log_data')), 'utf8').split('\n');
  const samplePlay = JSON.parse(sampleLines.find((l) => l.includes('"NextSong"')) ?? '') as Record<string, unknown>;
  const song = JSON.parse([...files].find(([k]) => k.startsWith('song_data/'))?.[1] ?? '') as Record<string, unknown>;
  const genLines = [...files].filter(([k]) => k.startsWith('log_data/')).flatMap(([, t]) => t.split('\n'));
  const play = JSON.parse(genLines.find((l) => l.includes('"NextSong"')) ?? '') as Record<string, unknown>;

  const kinds = (o: Record<string, unknown>) => Object.entries(o).map(([k, v]) => [k, v === null ? 'null' : typeof v]);
  assert.deepEqual(Object.keys(song), Object.keys(sampleSong));
  assert.deepEqual(Object.keys(play), Object.keys(samplePlay));
  // Nullable coordinates aside, every field has the sample's JSON type.
  const nonNull = (o: Record<string, unknown>) => kinds(o).filter(([, t]) => t !== 'null');
  assert.deepEqual(
    nonNull(song).filter(([k]) => !String(k).startsWith('artist_l')),
    nonNull(sampleSong).filter(([k]) => !String(k).startsWith('artist_l')),
  );
  assert.deepEqual(kinds(play), kinds(samplePlay));
  // Written as the source writes them: registration as a float, `/` escaped, userId a string.
  const raw = genLines.find((l) => l.includes('"NextSong"')) ?? '';
  assert.match(raw, /"registration":\d+\.0,/);
  assert.match(raw, /"userId":"\d+"}$/);
  assert.ok(!/[^\\]\//.test(raw), 'slashes are escaped as in the sample');
  await fs.rm(dir, { recursive: true, force: true });
});
