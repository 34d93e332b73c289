import { closeSync, createReadStream, openSync, readSync } from 'node:fs';
import { mkdir, truncate } from 'node:fs/promises';
import path from 'node:path';
import { createInterface } from 'node:readline';
import type { DuckDBConnection } from '@duckdb/node-api';
import type { Store } from '../../storage/store';
import { mapLimit } from '../../storage/concurrency';
import { joinUri, parseUri } from '../../storage/uri';
import { type DuckDbOptions, withDuckDb, withScratch } from '../../worker/duckdb';
import { sqlFileList, sqlString } from './duckdb';
import { eventLinePattern } from './record-scan';
import { InputDataError } from './errors';
import { runCache } from './run-cache';
import { monthsOf } from './build-partitioned';
import type { Manifest } from './list-inputs';
import { type OnProgress, runPaths } from './paths';
import {
  FileRecords,
  type LineShape,
  LineSplitter,
  keepLines,
  MAX_RECORD_BYTES,
  type RecordKind,
  type Reject,
  SOURCE_FILE,
  SOURCE_LINE,
  SpillBuffer,
  concatenate,
  orderedSegments,
  readCapped,
  readLines,
  songFileRecords,
} from './records';
import { type ColumnSpec, EVENT_COLUMNS, SONG_COLUMNS } from './schema';

export interface StageArgs {
  store: Store;
  /** URI of a manifest written by `listInputs`. */
  manifest: string;
  output: string;
  runId: string;
  duckdb?: DuckDbOptions;
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
  /** Events only: the months (`YYYY-MM`) of the part's plays, so each month's build reads only its parts. */
  months?: string[];
  /** Events only: files DuckDB certified whole, staged without JS reading their lines (the others were). */
  certified?: number;
}

export type { Reject } from './records';
export { MAX_RECORD_BYTES } from './records';

interface Parsed {
  /** Each accepted record as one line of JSON (its checked values), in file order. */
  records: string[];
  rejects: Reject[];
  /** Accepted `NextSong` events. */
  plays: number;
}

/** Reads one file's text in memory with the rules staging applies (for tests and tools; staging streams). */
function parseText(file: string, text: string, kind: RecordKind): Parsed {
  const accepted = new SpillBuffer();
  const rejects = new SpillBuffer();
  const records = new FileRecords(file, 0, kind, accepted, rejects);
  const bytes = Buffer.from(text, 'utf8');
  if (kind === 'songs') {
    songFileRecords(bytes, records);
  } else {
    const splitter = new LineSplitter((line, b, size) => records.line(line, b, size));
    splitter.push(bytes);
    splitter.end();
  }
  return {
    records: [...accepted.buffered],
    rejects: rejects.buffered.map((r) => JSON.parse(r) as Reject),
    plays: records.plays,
  };
}

/** A song file's records: one JSON object (compact or pretty-printed), an array of them, or one per line. */
export function parseSongFile(file: string, text: string): Parsed {
  return parseText(file, text, 'songs');
}

/** An event file: one JSON object per line. */
export function parseEventFile(file: string, text: string): Parsed {
  return parseText(file, text, 'events');
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
  let reportedAt = 0;
  const report = (force: boolean) => {
    if (!force && progress.bytesDone - reportedAt < PROGRESS_BYTES) return;
    reportedAt = progress.bytesDone;
    args.onProgress?.({ ...progress });
  };

  return withScratch(args.duckdb ?? {}, 'stage', async (dir) => {
    // Files are read in parallel, each into its own accepted and rejects buffers (spilled to scratch files when
    // large), then put together in manifest order: the part's row order is the same on every attempt.
    const files = await mapLimit(
      manifest.files,
      args.concurrency ?? 16,
      async (f, i) => {
        const records = new FileRecords(
          f.uri,
          i,
          kind,
          new SpillBuffer(path.join(dir, `accepted-${i}.ndjson`)),
          new SpillBuffer(path.join(dir, `rejects-${i}.jsonl`)),
          kind === 'events',
        );
        let kept: { copy: string; shape: LineShape } | undefined;
        if (kind === 'events') {
          const onBytes = (n: number) => {
            progress.bytesDone += n;
            report(false);
          };
          // Staging reads the bytes kept as they were read, whatever happens to the input file meanwhile.
          const copy = path.join(dir, `input-${i}.ndjson`);
          kept = { copy, shape: await keepLines(await store.readStream(f.uri), copy, onBytes, args.signal) };
        } else {
          // A song file is one small document: read whole, but never more than the record size limit.
          const bytes = await readSongFile(store, f.uri, f.size);
          if (bytes) songFileRecords(bytes, records);
          else records.reject(1, `file larger than the ${MAX_RECORD_BYTES}-byte record limit`, '');
          progress.bytesDone += f.size;
        }
        progress.filesDone++;
        report(true);
        return { records, kept, certified: false };
      },
      args.signal,
    );
    if (kind === 'events') {
      // A file DuckDB certifies whole is staged as it is; any other goes line by line (the scan, then the full
      // check), its head of lines the scan accepts as they are still staged from its bytes.
      const plain = files.flatMap((f) => (f.kept?.shape.plain ? [f.kept.copy] : []));
      const certified = await certifyEventFiles(args.duckdb ?? {}, dir, plain, args.signal);
      await mapLimit(
        files,
        4,
        async (f) => {
          const { copy, shape } = f.kept!;
          const plays = certified.get(copy);
          if (plays !== undefined && plays.lines === shape.lines) {
            f.records.countedVerbatim(shape.lines, plays.plays, shape.bytes);
            f.certified = true;
          } else {
            await readLines(createReadStream(copy), f.records, () => undefined, args.signal);
            // The verbatim head is the copy's first bytes: cut there, DuckDB reads the rest from `accepted`.
            if (f.records.verbatimBytes > 0) await truncate(copy, f.records.verbatimBytes);
          }
        },
        args.signal,
      );
    }
    for (const f of files) {
      await f.records.accepted.close();
      await f.records.rejects.close();
    }
    const records = files.reduce((a, f) => a + f.records.records, 0);
    const rejected = files.reduce((a, f) => a + f.records.rejected, 0);

    // Written in the worker's run cache, where build finds it without downloading it again.
    const local = runCache(args.duckdb ?? {}, args.runId).at('staged', kind, path.basename(part));
    await mkdir(path.dirname(local), { recursive: true });
    // An event file's verbatim head is its kept copy, cut at the head's end.
    const headOf = (f: (typeof files)[number]) => (f.kept && f.records.verbatimBytes > 0 ? f.kept.copy : undefined);
    const segments = await orderedSegments(
      files.flatMap((f) => {
        const head = headOf(f);
        return head ? [head, f.records.accepted] : [f.records.accepted];
      }),
      (i) => path.join(dir, `accepted-group-${i}.ndjson`),
    );
    let months: string[] = [];
    await copyToParquet({
      settings: args.duckdb ?? {},
      dir,
      columns,
      segments,
      verbatim: new Map(
        files.flatMap((f) => {
          const head = headOf(f);
          return head ? [[head, f.records.file]] : [];
        }),
      ),
      target: local,
      files: manifest.files.map((f) => f.uri),
      what: `${kind} chunk ${manifest.index}`,
      signal: args.signal,
      // In the same DuckDB: the part's months, so each month's build reads only its parts.
      then: kind === 'events' ? async (conn) => void (months = await monthsOf(conn, local)) : undefined,
    });
    await store.write(part, { file: local });
    if (rejected > 0) {
      const rejectsFile = path.join(dir, 'rejects.jsonl');
      await concatenate(
        files.map((f) => f.records.rejects),
        rejectsFile,
      );
      await store.write(rejectsUri, { file: rejectsFile });
    } else {
      await store.delete(rejectsUri); // a retry that now rejects nothing must not leave an old file behind
    }
    return {
      kind,
      files: manifest.files.length,
      bytes: bytesTotal,
      records,
      rejected,
      plays: files.reduce((a, f) => a + f.records.plays, 0),
      part,
      rejects: rejected > 0 ? rejectsUri : null,
      ...(kind === 'events' ? { months, certified: files.filter((f) => f.certified).length } : {}),
    };
  });
}

/**
 * Of the given plain event files (`keepLines`), those whose every line matches `eventLinePattern` — lines the scan
 * would accept as they are, a play exactly when it says `"page":"NextSong"` — counted in DuckDB (natively, with
 * all threads) instead of by the scan in JS: file to its lines and plays. A file missing here goes line by line;
 * so does every file when DuckDB cannot read them as lines (then nothing is lost but time).
 */
async function certifyEventFiles(
  settings: DuckDbOptions,
  dir: string,
  files: string[],
  signal?: AbortSignal,
): Promise<Map<string, { lines: number; plays: number }>> {
  const certified = new Map<string, { lines: number; plays: number }>();
  if (files.length === 0) return certified;
  // Each line one VARCHAR: no quoting, and a delimiter no certified line holds (a raw control character).
  const lines =
    `read_csv(${sqlFileList(files)}, columns = {'line': 'VARCHAR'}, delim = ${sqlString('\u0001')}, quote = '', ` +
    `escape = '', header = false, auto_detect = false, filename = true, new_line = '\\n')`;
  const sql =
    `SELECT filename, count(*)::BIGINT AS n, ` +
    `count(*) FILTER (WHERE regexp_full_match(line, ${sqlString(EVENT_LINE_PATTERN)}))::BIGINT AS matched, ` +
    `count(*) FILTER (WHERE contains(line, '"page":"NextSong"'))::BIGINT AS plays ` +
    `FROM ${lines} GROUP BY filename`;
  try {
    await withDuckDb(
      settings,
      dir,
      async (conn) => {
        const rows = (await conn.runAndReadAll(sql)).getRowObjectsJS() as {
          filename: string;
          n: bigint;
          matched: bigint;
          plays: bigint;
        }[];
        for (const row of rows) {
          // Plays are counted on every line, which is right once every line matched.
          if (row.matched === row.n) certified.set(row.filename, { lines: Number(row.n), plays: Number(row.plays) });
        }
      },
      signal,
    );
  } catch (err) {
    if (signal?.aborted) throw err;
    certified.clear();
  }
  return certified;
}

const EVENT_LINE_PATTERN = eventLinePattern();

/**
 * A song file's bytes, or undefined when it is over the record size limit. A local file of the listed size is
 * read with one synchronous open and read (a run reads ~20,000 of them: a promised call costs ~10x its system
 * call, a stream per file more still); anything else streams, never reading more than the limit.
 */
async function readSongFile(store: Store, uri: string, listedSize: number): Promise<Buffer | undefined> {
  const where = parseUri(uri);
  if (where.kind === 'local' && listedSize <= MAX_RECORD_BYTES) {
    const fd = openSync(where.path, 'r');
    try {
      const bytes = Buffer.allocUnsafe(listedSize + 1);
      const bytesRead = readSync(fd, bytes, 0, bytes.length, 0);
      if (bytesRead <= listedSize) return bytes.subarray(0, bytesRead);
    } finally {
      closeSync(fd);
    }
    // It grew since it was listed: read it as any other.
  }
  return readCapped(await store.readStream(uri));
}

/** Progress is reported at least this often while a large file streams (and after each file). */
const PROGRESS_BYTES = 8 * 1024 * 1024;

interface CopyToParquet {
  settings: DuckDbOptions;
  dir: string;
  columns: readonly ColumnSpec[];
  /** Newline-delimited JSON files of accepted records, in order. */
  segments: string[];
  /** Segments that are an input file's verbatim head (segment to input URI): their line N is that file's. */
  verbatim?: ReadonlyMap<string, string>;
  /** Runs in the same DuckDB after the copy. */
  then?: (conn: DuckDBConnection) => Promise<void>;
  target: string;
  /** The chunk's input files (records name theirs by index), for an error message. */
  files: string[];
  /** The chunk, for an error message. */
  what: string;
  signal?: AbortSignal;
}

/**
 * Writes the accepted records to Parquet with the explicit column types. The records were checked (plain raw
 * records, or re-serialised from checked values), so DuckDB should read every one; should it still refuse one, its message (which quotes the
 * record) is replaced by the input file, line and kind of error.
 */
export async function copyToParquet(c: CopyToParquet): Promise<void> {
  const { columns } = c;
  const types = columns.map((col) => `${sqlString(col.name)}: ${sqlString(col.type)}`).join(', ');
  const source =
    c.segments.length === 0
      ? `(SELECT ${columns.map((col) => `NULL::${col.type} AS "${col.name}"`).join(', ')} LIMIT 0)`
      : `read_json(${sqlFileList(c.segments)}, columns = {${types}}, ` +
        `format = 'newline_delimited', maximum_object_size = ${MAX_NORMALISED_BYTES})`;
  const select = `SELECT ${columns.map((col) => `"${col.name}"`).join(', ')} FROM ${source}`;
  try {
    await withDuckDb(
      c.settings,
      c.dir,
      async (conn) => {
        await conn.run(`COPY (${select}) TO ${sqlString(c.target)} (FORMAT parquet, COMPRESSION zstd)`);
        await c.then?.(conn);
      },
      c.signal,
    );
  } catch (err) {
    // Only a refused record is bad data; anything else (out of memory, a full disk, a cancel) keeps its class.
    if (c.signal?.aborted || !refusedRecord(err, c.segments)) throw err;
    throw await duckDbRefusal(err, c);
  }
}

/**
 * An accepted record is at most `MAX_RECORD_BYTES` of JSON re-serialised (only the schema's columns, shorter
 * escapes): 2x leaves room, and keeps DuckDB's read buffers (a few times this size) small.
 */
const MAX_NORMALISED_BYTES = 2 * MAX_RECORD_BYTES;

function refusedRecord(err: unknown, segments: readonly string[]): boolean {
  const message = err instanceof Error ? err.message : '';
  return segments.some((s) => message.includes(s)) || /^(Invalid Input|Conversion) Error/.test(message);
}

/** DuckDB's kinds of read errors, by what its message says (the message itself quotes the record). */
const DUCKDB_REASONS: [RegExp, string][] = [
  [/duplicate key/i, 'duplicate key'],
  [/malformed JSON/i, 'malformed JSON'],
  [/conver|transform|cast/i, 'a value DuckDB cannot convert to its column type'],
];

async function duckDbRefusal(err: unknown, c: CopyToParquet): Promise<InputDataError> {
  const message = err instanceof Error ? err.message : String(err);
  const reason = DUCKDB_REASONS.find(([re]) => re.test(message))?.[1] ?? 'a record DuckDB cannot read';
  const where = await sourceOfRecord(message, c).catch(() => undefined);
  const at = where ? `${where.file} line ${where.line}` : `one of ${c.files.length} files`;
  // No `cause`: DuckDB's message would carry the record into the workflow history.
  return new InputDataError(`${c.what}: DuckDB could not read the record at ${at}: ${reason}`);
}

/** The input file and line of the accepted record DuckDB's message points at (`in file "…", … line N`). */
async function sourceOfRecord(message: string, c: CopyToParquet) {
  const segment = c.segments.find((s) => message.includes(s));
  const lineNo = Number(/in line (\d+)/.exec(message)?.[1]);
  if (!segment || !Number.isInteger(lineNo)) return undefined;
  const input = c.verbatim?.get(segment);
  if (input) return { file: input, line: lineNo };
  const lines = createInterface({ input: createReadStream(segment), crlfDelay: Infinity });
  let n = 0;
  try {
    for await (const text of lines) {
      if (++n < lineNo) continue;
      const source = JSON.parse(text) as Record<string, unknown>;
      const file = c.files[Number(source[SOURCE_FILE])];
      const line = Number(source[SOURCE_LINE]);
      return file && Number.isInteger(line) ? { file, line } : undefined;
    }
  } finally {
    lines.close();
  }
  return undefined;
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
