import { Readable } from 'node:stream';
import type { Store } from '../../storage/store';
import { createStore } from '../../storage/store';
import { mapLimit } from '../../storage/concurrency';
import { joinUri } from '../../storage/uri';

export interface GenerateOptions {
  /** Where to write `song_data/` and `log_data/` (S3 URI or local directory). */
  out: string;
  songs: number;
  events: number;
  days: number;
  seed: number;
  /** First day of events (UTC). Default `'2018-11-01'`, as the Udacity sample. */
  startDate?: string;
  /** Share of `NextSong` plays that name a generated song exactly (title, artist name, duration). Default 0.3. */
  matchRate?: number;
  /** Distinct artists; default 70% of the songs (so artists share songs). */
  artists?: number;
  /** Registered users; default scales with events (10..500). */
  users?: number;
  /** `NextSong` lines written twice (an event delivered twice upstream). Default 0. */
  duplicates?: number;
  /** Parallel uploads. Default 16. */
  concurrency?: number;
  store?: Store;
}

/** What the generator knows the pipeline must produce. */
export interface GenerateExpectations {
  songFiles: number;
  songs: number;
  artists: number;
  logFiles: number;
  /** Lines in the log files (all pages, duplicates included). */
  eventLines: number;
  /** Distinct `NextSong` events (= songplays). */
  nextSongEvents: number;
  /** `NextSong` lines, duplicates included. */
  nextSongLines: number;
  /** Distinct users with a `NextSong` event (= users table). */
  users: number;
  /** Distinct `ts` of `NextSong` events (= time table). */
  startTimes: number;
  /** Distinct `NextSong` events whose song, artist and length match a song. */
  matchedPlays: number;
  /** Level of each user's latest `NextSong` event, by userId. */
  finalLevels: Record<string, 'free' | 'paid'>;
  /** Users whose `NextSong` events show both levels (they upgraded during the period). */
  levelChangedUsers: string[];
  /** Lines per log file, by date (`YYYY-MM-DD`). */
  linesPerDay: Record<string, number>;
}

/** mulberry32: small, fast and deterministic for a seed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const ALNUM = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';
const FIRST = [
  'Walter',
  'Kaylee',
  'Lily',
  'Jacob',
  'Tegan',
  'Aleena',
  'Chloe',
  'Jayden',
  'Mohammad',
  'Ryan',
  'Sara',
  'Noah',
];
const LAST = ['Frye', 'Summers', 'Koch', 'Klein', 'Levine', 'Kirby', 'Cuevas', 'Graves', 'Rodriguez', 'Smith', 'Ito'];
const CITIES = [
  'San Francisco-Oakland-Hayward, CA',
  'Phoenix-Mesa-Scottsdale, AZ',
  'Chicago-Naperville-Elgin, IL-IN-WI',
  'Portland-South Portland, ME',
  'Lansing-East Lansing, MI',
  'New York-Newark-Jersey City, NY-NJ-PA',
  'Atlanta-Sandy Springs-Roswell, GA',
];
const AGENTS = [
  '"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_9_4) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/36.0.1985.143 Safari/537.36"',
  '"Mozilla/5.0 (Windows NT 6.1; WOW64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/35.0.1916.153 Safari/537.36"',
  'Mozilla/5.0 (Windows NT 6.1; WOW64; rv:31.0) Gecko/20100101 Firefox/31.0',
  '"Mozilla/5.0 (iPhone; CPU iPhone OS 7_1_2 like Mac OS X) AppleWebKit/537.51.2 (KHTML, like Gecko) Version/7.0 Mobile/11D257 Safari/9537.53"',
];
const WORDS = [
  'Velvet',
  'Harbor',
  'Neon',
  'Rain',
  'Steel',
  'Paper',
  'Moon',
  'Echo',
  'Wild',
  'Rose',
  'Gun',
  'Tide',
  'Ghost',
];
const SONG_PLACES = [
  'California - LA',
  'Nashville, TN.',
  'Denmark',
  'Gainesville, FL',
  'Zagreb Croatia',
  'Hamtramck, MI',
  '',
];
// Other pages of a logged-in session, weighted roughly as in the sample (NextSong is about 85%).
const OTHER_PAGES = [
  'Home',
  'Home',
  'Home',
  'Home',
  'Thumbs Up',
  'Add to Playlist',
  'Settings',
  'Help',
  'About',
  'Error',
];

/** Python's `json.dumps` style: non-ASCII as `\uXXXX`, and (in the logs) `/` escaped as `\/`, as in the sample. */
function pyString(s: string, escapeSlash: boolean): string {
  let out = JSON.stringify(s).replace(/[\u007f-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
  if (escapeSlash) out = out.replace(/\//g, '\\/');
  return out;
}
const num = (v: number | null) => (v === null ? 'null' : String(v));
const str = (v: string | null, slash = false) => (v === null ? 'null' : pyString(v, slash));

interface Song {
  song_id: string;
  title: string;
  duration: number;
  year: number;
  artist: Artist;
}
interface Artist {
  id: string;
  name: string;
  location: string;
  latitude: number | null;
  longitude: number | null;
}
interface User {
  id: string;
  first: string;
  last: string;
  gender: 'M' | 'F';
  location: string;
  agent: string;
  registration: number;
  level: 'free' | 'paid';
  /** Epoch ms from which a free user is paid. */
  upgradeAt: number | null;
}
interface Event {
  ts: number;
  line: string;
}

function songFileJson(s: Song): string {
  const a = s.artist;
  return (
    `{"num_songs": 1, "artist_id": ${str(a.id)}, "artist_latitude": ${num(a.latitude)}, ` +
    `"artist_longitude": ${num(a.longitude)}, "artist_location": ${str(a.location)}, "artist_name": ${str(a.name)}, ` +
    `"song_id": ${str(s.song_id)}, "title": ${str(s.title)}, "duration": ${num(s.duration)}, "year": ${s.year}}`
  );
}

interface EventFields {
  artist: string | null;
  auth: string;
  user: User | null;
  itemInSession: number;
  length: number | null;
  level: string;
  method: string;
  page: string;
  sessionId: number;
  song: string | null;
  status: number;
  ts: number;
}

function eventJson(e: EventFields): string {
  const u = e.user;
  return (
    `{"artist":${str(e.artist, true)},"auth":${str(e.auth)},"firstName":${str(u?.first ?? null)},` +
    `"gender":${str(u?.gender ?? null)},"itemInSession":${e.itemInSession},"lastName":${str(u?.last ?? null)},` +
    `"length":${num(e.length)},"level":${str(e.level)},"location":${str(u?.location ?? null, true)},` +
    `"method":${str(e.method)},"page":${str(e.page)},"registration":${u ? `${u.registration}.0` : 'null'},` +
    `"sessionId":${e.sessionId},"song":${str(e.song, true)},"status":${e.status},"ts":${e.ts},` +
    `"userAgent":${str(u?.agent ?? null, true)},"userId":${str(u?.id ?? '')}}`
  );
}

/**
 * Writes a synthetic Sparkify dataset in the exact Udacity layout and format (`song_data/A/B/C/TR*.json`, one
 * object per file; `log_data/YYYY/MM/YYYY-MM-DD-events.json`, one event per line), deterministic for a seed, and
 * returns the counts the pipeline must produce. Event files are generated and uploaded one day at a time.
 */
export async function generateSparkify(opts: GenerateOptions): Promise<GenerateExpectations> {
  const rand = prng(opts.seed);
  const store = opts.store ?? createStore();
  const concurrency = opts.concurrency ?? 16;
  const int = (n: number) => Math.floor(rand() * n);
  const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)] as T;
  const id = (prefix: string) => prefix + Array.from({ length: 16 }, () => pick([...ALNUM])).join('');
  const round5 = (x: number) => Math.round(x * 1e5) / 1e5;

  // Artists and songs: the first `artistCount` songs give every artist a song, the rest share them.
  const artistCount = Math.max(1, Math.min(opts.songs, opts.artists ?? Math.ceil(opts.songs * 0.7)));
  const artists: Artist[] = [];
  const artistIds = new Set<string>();
  for (let i = 0; i < artistCount; i++) {
    let aid = id('AR');
    while (artistIds.has(aid)) aid = id('AR');
    artistIds.add(aid);
    const located = rand() < 0.5;
    artists.push({
      id: aid,
      name: `${pick(WORDS)} ${pick(WORDS)} ${i + 1}`,
      location: pick(SONG_PLACES),
      latitude: located ? round5(rand() * 140 - 70) : null,
      longitude: located ? round5(rand() * 360 - 180) : null,
    });
  }
  const songs: Song[] = [];
  const songFiles: { path: string; body: string }[] = [];
  const songIds = new Set<string>();
  for (let i = 0; i < opts.songs; i++) {
    let sid = id('SO');
    while (songIds.has(sid)) sid = id('SO');
    songIds.add(sid);
    const song: Song = {
      song_id: sid,
      title: `${pick(WORDS)} ${pick(WORDS)} (Track ${i + 1})${rand() < 0.05 ? ' Santafè' : ''}`,
      duration: round5(60 + rand() * 400),
      year: rand() < 0.5 ? 0 : 1960 + int(50),
      artist: i < artistCount ? (artists[i] as Artist) : pick(artists),
    };
    songs.push(song);
    // Track ids start with letters: their 3rd-5th characters are the A/B/C directories.
    const tr = 'TR' + Array.from({ length: 3 }, () => pick([...ALNUM.slice(0, 26)])).join('') + id('').slice(3);
    songFiles.push({ path: `song_data/${tr[2]}/${tr[3]}/${tr[4]}/${tr}.json`, body: songFileJson(song) });
  }
  const songKeys = new Set(songs.map((s) => `${s.title}\u0000${s.artist.name}\u0000${s.duration}`));

  const userCount = opts.users ?? Math.max(10, Math.min(500, Math.ceil(opts.events / 80)));
  const start = Date.parse(`${opts.startDate ?? '2018-11-01'}T00:00:00Z`);
  const dayMs = 86_400_000;
  const users: User[] = Array.from({ length: userCount }, (_, i) => {
    const level = rand() < 0.3 ? 'paid' : 'free';
    return {
      id: String(i + 2),
      first: pick(FIRST),
      last: pick(LAST),
      gender: rand() < 0.5 ? 'M' : 'F',
      location: pick(CITIES),
      agent: pick(AGENTS),
      registration: start - 1000 * (86_400 + int(60 * 86_400)) - 204,
      level,
      // A third of the free users upgrade at some point of the period.
      upgradeAt: level === 'free' && rand() < 0.34 ? start + int(opts.days * dayMs) : null,
    };
  });

  const exp: GenerateExpectations = {
    songFiles: songFiles.length,
    songs: songs.length,
    artists: artists.length,
    logFiles: opts.days,
    eventLines: 0,
    nextSongEvents: 0,
    nextSongLines: 0,
    users: 0,
    startTimes: 0,
    matchedPlays: 0,
    finalLevels: {},
    levelChangedUsers: [],
    linesPerDay: {},
  };
  const startTimes = new Set<number>();
  const lastPlay = new Map<string, { ts: number; level: 'free' | 'paid'; levels: Set<string> }>();
  let sessionId = 1;
  let duplicatesLeft = opts.duplicates ?? 0;
  const matchRate = opts.matchRate ?? 0.3;

  const writes: Promise<unknown>[] = [];
  const songWrites = mapLimit(songFiles, concurrency, (f) => store.write(joinUri(opts.out, f.path), f.body));
  // Awaited below; the no-op catch only stops an early failure from being reported as unhandled meanwhile.
  songWrites.catch(() => undefined);

  for (let day = 0; day < opts.days; day++) {
    const dayStart = start + day * dayMs;
    const target = Math.floor(opts.events / opts.days) + (day < opts.events % opts.days ? 1 : 0);
    const events: Event[] = [];
    while (events.length < target) {
      // A session fits inside its day (at most 40 events, 4 minutes apart), so file date = event date.
      const loggedIn = rand() >= 0.04;
      const user = loggedIn ? pick(users) : null;
      const length = Math.min(target - events.length, 1 + int(40));
      let ts = dayStart + 1000 * int(86_400 - 40 * 240 - 1) + 796;
      const sid = sessionId++;
      for (let item = 0; item < length; item++) {
        ts += 1000 * int(240);
        const level = !user ? 'free' : user.upgradeAt !== null && ts >= user.upgradeAt ? 'paid' : user.level;
        if (!user) {
          const page = item === length - 1 && length > 1 ? 'Login' : pick(['Home', 'Home', 'About', 'Help']);
          const isLogin = page === 'Login';
          const e = { artist: null, auth: 'Logged Out', user: null, itemInSession: item, length: null, level };
          events.push({
            ts,
            line: eventJson({
              ...e,
              method: isLogin ? 'PUT' : 'GET',
              page,
              sessionId: sid,
              song: null,
              status: isLogin ? 307 : 200,
              ts,
            }),
          });
          continue;
        }
        const roll = rand();
        if (roll < 0.85 || length === 1) {
          const matched = rand() < matchRate && songs.length > 0;
          const s = matched ? pick(songs) : null;
          const title = s ? s.title : `${pick(WORDS)} ${pick(WORDS)} ${pick(WORDS)} (Live ${int(1000)})`;
          const artist = s ? s.artist.name : `${pick(FIRST)} ${pick(WORDS)}`;
          const len = s ? s.duration : round5(60 + rand() * 400);
          const fields: EventFields = {
            artist,
            auth: 'Logged In',
            user,
            itemInSession: item,
            length: len,
            level,
            method: 'PUT',
            page: 'NextSong',
            sessionId: sid,
            song: title,
            status: 200,
            ts,
          };
          const line = eventJson(fields);
          events.push({ ts, line });
          exp.nextSongLines++;
          exp.nextSongEvents++;
          if (duplicatesLeft > 0 && rand() < 0.2) {
            duplicatesLeft--;
            events.push({ ts, line });
            exp.nextSongLines++;
          }
          if (songKeys.has(`${title}\u0000${artist}\u0000${len}`)) exp.matchedPlays++;
          startTimes.add(ts);
          const prev = lastPlay.get(user.id);
          const levels = prev?.levels ?? new Set<string>();
          levels.add(level);
          if (!prev || ts >= prev.ts) lastPlay.set(user.id, { ts, level, levels });
        } else {
          const last = item === length - 1 && rand() < 0.5;
          const page = last ? 'Logout' : pick(OTHER_PAGES);
          events.push({
            ts,
            line: eventJson({
              artist: null,
              auth: 'Logged In',
              user,
              itemInSession: item,
              length: null,
              level,
              method: last ? 'PUT' : 'GET',
              page,
              sessionId: sid,
              song: null,
              status: last ? 307 : 200,
              ts,
            }),
          });
        }
      }
    }
    // The source files are in time order; a stable sort keeps duplicates and sessions deterministic.
    events.sort((a, b) => a.ts - b.ts);
    const date = new Date(dayStart).toISOString().slice(0, 10);
    exp.linesPerDay[date] = events.length;
    exp.eventLines += events.length;
    const uri = joinUri(opts.out, 'log_data', date.slice(0, 4), date.slice(5, 7), `${date}-events.json`);
    const body = Readable.from(
      (function* () {
        for (let i = 0; i < events.length; i++) {
          yield (i === 0 ? '' : '\n') + (events[i] as Event).line;
        }
      })(),
    );
    const written = store.write(uri, body);
    written.catch(() => undefined);
    writes.push(written);
    // Bounded: at most a few days' files in flight while the next day is generated.
    if (writes.length >= 4) await writes.shift();
  }
  await Promise.all([...writes, songWrites]);

  exp.startTimes = startTimes.size;
  exp.users = lastPlay.size;
  for (const [uid, p] of [...lastPlay].sort((a, b) => Number(a[0]) - Number(b[0]))) {
    exp.finalLevels[uid] = p.level;
    if (p.levels.size > 1) exp.levelChangedUsers.push(uid);
  }
  return exp;
}
