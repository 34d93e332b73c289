import { createWriteStream } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { once } from 'node:events';
import path from 'node:path';
import { finished } from 'node:stream/promises';
import type { Store } from '../storage/store';
import { mapLimit } from '../storage/concurrency';
import { joinUri } from '../storage/uri';
import { type DuckDbSettings, sqlString, withDuckDb, withScratch } from './duckdb';
import { InputDataError } from './errors';
import { runCache } from './run-cache';
import type { Manifest } from './list-inputs';
import { type OnProgress, runPaths } from './paths';
import { type Checked, EVENT_COLUMNS, SONG_COLUMNS, checkEvent, checkSong } from './schema';

export interface StageArgs {
  store: Store;
  /** URI of a manifest written by `listInputs`. */
  manifest: string;
  output: string;
  runId: string;
  duckdb?: DuckDbSettings;
  /** Parallel downloads. Default 16. */
  concurrency?: number;
  onProgress?: OnProgress;
  signal?: AbortSignal;
}

export interface StageResult {
  kind: 'songs' | 'events';
  files: number;
  bytes: number;
  /** Records written to the staging Parquet part. */
  records: number;
  /** Records written to the rejects file instead (records + rejected = every record read). */
  rejected: number;
  /** Of `records`, the `NextSong` events (0 for songs). */
  plays: number;
  part: string;
  rejects: string | null;
}

export interface Reject {
  file: string;
  line: number;
  reason: string;
  raw: string;
}

const RAW_LIMIT = 64 * 1024;
const clip = (s: string) => (s.length > RAW_LIMIT ? `${s.slice(0, RAW_LIMIT)}…` : s);

function lineOf(text: string, err: unknown): number {
  const m = /position (\d+)/.exec(err instanceof Error ? err.message : '');
  if (!m) return 1;
  return text.slice(0, Number(m[1])).split('\n').length;
}

interface Parsed {
  /** Each accepted record as one line of JSON, in file order. */
  records: string[];
  rejects: Reject[];
  /** Accepted `NextSong` events. */
  plays: number;
}

/**
 * A song file holds one JSON object, compact or pretty-printed. A file of several one-line objects is read as
 * newline-delimited (each line a record); anything else that does not parse is one rejected record.
 */
export function parseSongFile(file: string, text: string): Parsed {
  const out: Parsed = { records: [], rejects: [], plays: 0 };
  if (text.trim() === '') return out;
  const add = (value: unknown, line: number, raw: string) => {
    const c: Checked = checkSong(value);
    if (c.ok) out.records.push(JSON.stringify(value));
    else out.rejects.push({ file, line, reason: c.reason, raw: clip(raw) });
  };
  try {
    const value: unknown = JSON.parse(text);
    if (Array.isArray(value)) value.forEach((v) => add(v, 1, JSON.stringify(v)));
    else add(value, 1, text);
    return out;
  } catch (err) {
    const lines = text.split(/\r?\n/);
    const nonEmpty = lines.filter((l) => l.trim() !== '');
    if (nonEmpty.length > 1 && nonEmpty.every((l) => l.trim().startsWith('{'))) {
      return parseEventLike(file, lines, checkSong);
    }
    out.rejects.push({
      file,
      line: lineOf(text, err),
      reason: `malformed JSON: ${(err as Error).message}`,
      raw: clip(text),
    });
    return out;
  }
}

const PAGE = EVENT_COLUMNS.findIndex((c) => c.name === 'page');

function parseEventLike(file: string, lines: string[], check: (v: unknown) => Checked): Parsed {
  const out: Parsed = { records: [], rejects: [], plays: 0 };
  lines.forEach((raw, i) => {
    if (raw.trim() === '') return; // blank lines (e.g. the file's last newline) are not records
    let value: unknown;
    try {
      value = JSON.parse(raw);
    } catch (err) {
      out.rejects.push({ file, line: i + 1, reason: `malformed JSON: ${(err as Error).message}`, raw: clip(raw) });
      return;
    }
    const c = check(value);
    if (!c.ok) {
      out.rejects.push({ file, line: i + 1, reason: c.reason, raw: clip(raw) });
      return;
    }
    out.records.push(raw); // one line of valid JSON already
    if (check === checkEvent && c.row[PAGE] === 'NextSong') out.plays++;
  });
  return out;
}

/** An event file: one JSON object per line. */
export function parseEventFile(file: string, text: string): Parsed {
  return parseEventLike(file, text.split(/\r?\n/), checkEvent);
}

async function readManifest(store: Store, uri: string, kind: Manifest['kind']): Promise<Manifest> {
  // A failed read (an outage, wrong credentials) keeps its own class; only unparseable content is bad data.
  const text = (await store.read(uri)).toString('utf8');
  let manifest: Manifest;
  try {
    manifest = JSON.parse(text) as Manifest;
  } catch (err) {
    throw new InputDataError(`cannot parse manifest ${uri}: ${(err as Error).message}`, { cause: err });
  }
  if (manifest.kind !== kind || !Array.isArray(manifest.files)) {
    throw new InputDataError(`manifest ${uri} is not a '${kind}' manifest`);
  }
  return manifest;
}

async function stage(args: StageArgs, kind: 'songs' | 'events'): Promise<StageResult> {
  const { store } = args;
  const manifest = await readManifest(store, args.manifest, kind === 'songs' ? 'songs' : 'logs');
  const paths = runPaths(args.output, args.runId);
  const columns = kind === 'songs' ? SONG_COLUMNS : EVENT_COLUMNS;
  const n = String(manifest.index).padStart(5, '0');
  const part = joinUri(kind === 'songs' ? paths.stagedSongs : paths.stagedEvents, `part-${n}.parquet`);
  const rejectsUri = joinUri(paths.rejects, `${kind}-part-${n}.jsonl`);
  const bytesTotal = manifest.files.reduce((a, f) => a + f.size, 0);
  const progress = { filesDone: 0, filesTotal: manifest.files.length, bytesDone: 0, bytesTotal };

  // Parsed per file in parallel, kept in manifest order so the part's row order is the same on every attempt.
  const parsed = await mapLimit(
    manifest.files,
    args.concurrency ?? 16,
    async (f) => {
      const text = (await store.read(f.uri)).toString('utf8');
      const result = kind === 'songs' ? parseSongFile(f.uri, text) : parseEventFile(f.uri, text);
      progress.filesDone++;
      progress.bytesDone += f.size;
      args.onProgress?.({ ...progress });
      return result;
    },
    args.signal,
  );
  const rejects = parsed.flatMap((p) => p.rejects);
  const records = parsed.reduce((a, p) => a + p.records.length, 0);

  await withScratch(args.duckdb ?? {}, 'stage', async (dir) => {
    // The accepted records, validated above, as newline-delimited JSON: DuckDB reads them natively with the
    // explicit column types (every value already has its column's type).
    const accepted = path.join(dir, 'accepted.ndjson');
    const out = createWriteStream(accepted);
    for (const p of parsed) {
      if (p.records.length > 0 && !out.write(p.records.join('\n') + '\n')) await once(out, 'drain');
    }
    out.end();
    await finished(out);
    // Written in the worker's run cache, where build finds it without downloading it again.
    const local = runCache(args.duckdb ?? {}, args.runId).at('staged', kind, path.basename(part));
    await mkdir(path.dirname(local), { recursive: true });
    await withDuckDb(
      args.duckdb ?? {},
      dir,
      async (conn) => {
        const types = columns.map((c) => `${sqlString(c.name)}: ${sqlString(c.type)}`).join(', ');
        const source =
          records === 0
            ? `(SELECT ${columns.map((c) => `NULL::${c.type} AS "${c.name}"`).join(', ')} LIMIT 0)`
            : `read_json(${sqlString(accepted)}, columns = {${types}}, format = 'newline_delimited', maximum_object_size = 134217728)`;
        const select = `SELECT ${columns.map((c) => `"${c.name}"`).join(', ')} FROM ${source}`;
        await conn.run(`COPY (${select}) TO ${sqlString(local)} (FORMAT parquet, COMPRESSION zstd)`);
      },
      args.signal,
    );
    await store.write(part, { file: local });
  });
  if (rejects.length > 0) {
    await store.write(rejectsUri, rejects.map((r) => JSON.stringify(r)).join('\n') + '\n');
  } else {
    await store.delete(rejectsUri); // a retry that now rejects nothing must not leave an old file behind
  }
  return {
    kind,
    files: manifest.files.length,
    bytes: bytesTotal,
    records,
    rejected: rejects.length,
    plays: parsed.reduce((a, p) => a + p.plays, 0),
    part,
    rejects: rejects.length > 0 ? rejectsUri : null,
  };
}

/** Stages one chunk of song files: valid records to `_staging/<run>/songs/part-<n>.parquet`, others to rejects. */
export function stageSongs(args: StageArgs): Promise<StageResult> {
  return stage(args, 'songs');
}

/** Stages one chunk of event files: valid records to `_staging/<run>/events/part-<n>.parquet`, others to rejects. */
export function stageLogs(args: StageArgs): Promise<StageResult> {
  return stage(args, 'events');
}

export interface RejectAssessment {
  records: number;
  rejected: number;
  /** rejected / (records + rejected); 0 when nothing was read. */
  rate: number;
  maxRejectRate: number;
  passed: boolean;
  message: string;
}

/** Decides whether the run's rejects are within `maxRejectRate` (default 0.01) of all records read. */
export function assessRejects(
  results: readonly Pick<StageResult, 'records' | 'rejected'>[],
  maxRejectRate = 0.01,
): RejectAssessment {
  const records = results.reduce((a, r) => a + r.records, 0);
  const rejected = results.reduce((a, r) => a + r.rejected, 0);
  const total = records + rejected;
  const rate = total === 0 ? 0 : rejected / total;
  const passed = rate <= maxRejectRate;
  const pct = (x: number) => `${(x * 100).toFixed(2)}%`;
  const message = passed
    ? `${rejected} of ${total} records rejected (${pct(rate)}, limit ${pct(maxRejectRate)})`
    : `too many bad records: ${rejected} of ${total} rejected (${pct(rate)}), more than maxRejectRate ${pct(maxRejectRate)}; see _rejects/`;
  return { records, rejected, rate, maxRejectRate, passed, message };
}
