/**
 * Reading raw Sparkify records, one line (event) or one file (song) at a time, into accepted records and rejects.
 * Nothing here holds a whole file: event files are split into lines as their bytes stream in, a line over
 * `MAX_RECORD_BYTES` is counted and skipped without being kept, and both outputs spill to disk past a few
 * hundred KiB. An accepted record is either one the fast scan (`record-scan.ts`) proved plain, staged as its raw
 * bytes, or re-serialised from its checked values: either way no duplicate key, nested value, lone surrogate or
 * odd number form reaches DuckDB, and DuckDB reads the same values the full check accepted.
 */
import { createReadStream, createWriteStream, type WriteStream } from 'node:fs';
import { isUtf8 } from 'node:buffer';
import { once } from 'node:events';
import { finished, pipeline } from 'node:stream/promises';
import type { Readable } from 'node:stream';
import { RecordScanner, type ScanVerdict } from './record-scan';
import { type ColumnSpec, EVENT_COLUMNS, SONG_COLUMNS, checkEvent, checkSong } from './schema';

/** The largest record accepted: one line of an event file, or a whole song file. A larger one is a reject. */
export const MAX_RECORD_BYTES = 1024 * 1024;
/** How much of a rejected record its entry in `_rejects/` keeps (the lake only; never errors or history). */
export const RAW_LIMIT = 64 * 1024;
/** A file's accepted records (or rejects) stay in memory up to this size, then go to a scratch file. */
const SPILL_BYTES = 256 * 1024;
/**
 * Accepted records are copied into blocks that double from `FIRST_BLOCK_BYTES` to `BLOCK_BYTES` (fewer, larger
 * writes): a song file's buffer holds one record of a few hundred bytes, and a first block of 64 KiB for each of
 * a run's 20,000 song files was 1.3 GB of allocations (~1 s of the worker's main thread, more in GC).
 */
const FIRST_BLOCK_BYTES = 1024;
const BLOCK_BYTES = 64 * 1024;

export type RecordKind = 'songs' | 'events';

export interface Reject {
  file: string;
  line: number;
  reason: string;
  /** The record as read, clipped to `RAW_LIMIT` characters (invalid UTF-8 shown as U+FFFD). */
  raw: string;
}

// `ignoreBOM` keeps a byte order mark in the text: it is dropped only at the start of a file (see `lineText`).
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

// Only JSON's own whitespace makes a line blank (not a record); any other text is a record, read or rejected.
const BLANK = /^[ \t\r\n]*$/;

const clipRaw = (bytes: Buffer) =>
  bytes
    .subarray(0, RAW_LIMIT * 3)
    .toString('utf8')
    .slice(0, RAW_LIMIT);

/** Lines of accepted JSON or of rejects: in memory while small, in a scratch file past `SPILL_BYTES`. */
export class SpillBuffer {
  /** Filled blocks not yet written to the scratch file (all of them while nothing is spilled). */
  private blocks: Buffer[] = [];
  private sealed = 0;
  private block: Buffer = Buffer.alloc(0);
  private nextBlockBytes = FIRST_BLOCK_BYTES;
  private used = 0;
  private out: WriteStream | undefined;
  private mustDrain = false;
  count = 0;

  /** Without a file, every line stays in memory (small inputs, tests). */
  constructor(private readonly file?: string) {}

  /** One line of text (a reject, or a record re-serialised from its checked values). */
  write(line: string): void {
    this.reserve(Buffer.byteLength(line) + 1);
    this.used += this.block.write(line, this.used, 'utf8');
    this.block[this.used++] = 0x0a;
    this.added();
  }

  /**
   * A raw record, `bytes[0, end)`, ending in its closing `}`: written as it is with `suffix` (more members and
   * a `}`) in place of that brace, on one line (`\n`/`\r` between tokens become spaces when `flatten`).
   */
  writeRecord(bytes: Buffer, end: number, suffix: string, flatten: boolean): void {
    const body = end - 1;
    this.reserve(body + suffix.length + 1);
    const at = this.used;
    bytes.copy(this.block, at, 0, body);
    if (flatten) {
      for (let k = at; k < at + body; k++) {
        const c = this.block[k];
        if (c === 0x0a || c === 0x0d) this.block[k] = 0x20;
      }
    }
    this.used += body;
    this.used += this.block.write(suffix, this.used, 'latin1');
    this.block[this.used++] = 0x0a;
    this.added();
  }

  private reserve(n: number): void {
    if (this.used + n <= this.block.length) return;
    this.seal();
    this.block = Buffer.allocUnsafe(Math.max(this.nextBlockBytes, n));
    this.nextBlockBytes = Math.min(BLOCK_BYTES, this.nextBlockBytes * 2);
  }

  private seal(): void {
    if (this.used > 0) {
      this.blocks.push(this.block.subarray(0, this.used));
      this.sealed += this.used;
      this.block = this.block.subarray(this.used);
      this.used = 0;
    }
  }

  private added(): void {
    this.count++;
    if (this.file && this.sealed + this.used > SPILL_BYTES) this.flush();
  }

  private flush(): void {
    this.seal();
    this.out ??= createWriteStream(this.file as string);
    for (const b of this.blocks) if (!this.out.write(b)) this.mustDrain = true;
    this.blocks = [];
    this.sealed = 0;
  }

  /** Waits while the scratch file's stream is full (backpressure for the reader). */
  async drain(): Promise<void> {
    if (!this.mustDrain || !this.out) return;
    this.mustDrain = false;
    if (this.out.writableNeedDrain) await once(this.out, 'drain');
  }

  async close(): Promise<void> {
    if (!this.out) return;
    this.flush();
    const out = this.out;
    await new Promise<void>((resolve, reject) => {
      out.once('error', reject);
      out.end(() => resolve());
    });
  }

  /** The scratch file holding every line, or undefined when they are all in memory (`bufferedBytes`). */
  get spilledTo(): string | undefined {
    return this.out && this.file;
  }

  /** The lines kept in memory, each ending in a newline. */
  get bufferedBytes(): Buffer {
    return Buffer.concat([...this.blocks, this.block.subarray(0, this.used)]);
  }

  /** The lines kept in memory, as text. */
  get buffered(): readonly string[] {
    const text = this.bufferedBytes.toString('utf8');
    return text === '' ? [] : text.slice(0, -1).split('\n');
  }
}

/**
 * The accepted records of several files, in their order, as a few newline-delimited JSON files: a file named
 * (a verbatim head) or spilled is used as it is (no copy of a large input); consecutive in-memory ones are
 * written together.
 */
export async function orderedSegments(buffers: readonly (SpillBuffer | string)[], scratch: (i: number) => string) {
  const segments: string[] = [];
  let group: Buffer[] = [];
  const flush = async () => {
    if (group.length === 0) return;
    const file = scratch(segments.length);
    await writeFile(file, group);
    segments.push(file);
    group = [];
  };
  for (const b of buffers) {
    if (typeof b === 'string') {
      await flush();
      segments.push(b);
    } else if (b.spilledTo) {
      await flush();
      segments.push(b.spilledTo);
    } else if (b.count > 0) {
      group.push(b.bufferedBytes);
    }
  }
  await flush();
  return segments;
}

/** Every line of `buffers`, in order, into one file. */
export async function concatenate(buffers: readonly SpillBuffer[], file: string): Promise<void> {
  const out = createWriteStream(file);
  for (const b of buffers) {
    if (b.spilledTo) {
      await pipeline(createReadStream(b.spilledTo), out, { end: false });
    } else if (b.count > 0 && !out.write(b.bufferedBytes)) {
      await once(out, 'drain');
    }
  }
  await new Promise<void>((resolve, reject) => {
    out.once('error', reject);
    out.end(() => resolve());
  });
}

async function writeFile(file: string, parts: readonly Buffer[]): Promise<void> {
  const out = createWriteStream(file);
  for (const part of parts) if (!out.write(part)) await once(out, 'drain');
  await new Promise<void>((resolve, reject) => {
    out.once('error', reject);
    out.end(() => resolve());
  });
}

/**
 * Splits bytes into lines at `\n` (never inside a UTF-8 sequence, so splitting bytes is safe), numbering them
 * from 1 — blank lines and a last line without a newline included. A line longer than `max` is not kept: its
 * handler gets its head (enough for the rejects file) and the full size.
 */
export class LineSplitter {
  private parts: Buffer[] = [];
  private kept = 0;
  private size = 0;
  private line = 0;

  constructor(
    /** `consumed`: the line's bytes in the input, its `\r` and `\n` included (`crlf`: it ended in `\r\n`). */
    private readonly onLine: (line: number, bytes: Buffer, size: number, consumed: number, crlf: boolean) => void,
    private readonly max = MAX_RECORD_BYTES,
  ) {}

  push(chunk: Buffer): void {
    let start = 0;
    while (start < chunk.length) {
      const nl = chunk.indexOf(0x0a, start);
      const end = nl === -1 ? chunk.length : nl;
      this.add(chunk.subarray(start, end));
      if (nl === -1) return;
      this.emit(1);
      start = nl + 1;
    }
  }

  end(): void {
    if (this.size > 0) this.emit(0);
  }

  private add(piece: Buffer): void {
    this.size += piece.length;
    // Up to `max` plus the `\r` of a CRLF; past that only the head is kept, for the rejects file.
    const room = (this.size <= this.max + 1 ? this.max + 1 : RAW_LIMIT) - this.kept;
    if (room <= 0) return;
    const kept = piece.length <= room ? piece : piece.subarray(0, room);
    this.parts.push(kept);
    this.kept += kept.length;
  }

  private emit(newline: 0 | 1): void {
    this.line++;
    const bytes = this.parts.length === 1 ? (this.parts[0] as Buffer) : Buffer.concat(this.parts);
    const crlf = this.size > 0 && this.size <= this.kept && bytes[bytes.length - 1] === 0x0d;
    const size = this.size - (crlf ? 1 : 0);
    this.onLine(this.line, crlf ? bytes.subarray(0, bytes.length - 1) : bytes, size, this.size + newline, crlf);
    this.parts = [];
    this.kept = 0;
    this.size = 0;
  }
}

/** Accepted records and rejects of one input file, with exact counts (records + rejected = records read). */
export class FileRecords {
  records = 0;
  rejected = 0;
  plays = 0;
  /**
   * Newline-delimited input read with `verbatim`: the length of the file's head in which every line is a record
   * the scan accepts as it is (no blank line, no `\r\n`, no byte order mark). DuckDB reads that head straight
   * from the input (or a copy of its bytes) to the same values, so its records are counted but not copied into
   * `accepted`; from the first other line on, records go to `accepted` and `rejects` as usual.
   */
  verbatimBytes = 0;
  private readonly columns: readonly ColumnSpec[];

  constructor(
    readonly file: string,
    /** The file's position in its manifest: kept with each accepted record to trace DuckDB errors back. */
    readonly fileIndex: number,
    readonly kind: RecordKind,
    readonly accepted: SpillBuffer,
    readonly rejects: SpillBuffer,
    /** Whether the file's head may be staged verbatim (see `verbatimBytes`); false for song files. */
    public verbatim = false,
  ) {
    this.columns = kind === 'songs' ? SONG_COLUMNS : EVENT_COLUMNS;
  }

  /** The fast scan's verdict (`record-scan.ts`) on one record; valid UTF-8 is checked here, natively. */
  private scan(bytes: Buffer): ScanVerdict {
    if (!isUtf8(bytes)) return 0;
    return (this.kind === 'songs' ? SONG_SCANNER : EVENT_SCANNER).scan(bytes, 0, bytes.length);
  }

  /**
   * The fast path: a record the scan proves acceptable is staged as its raw bytes, plus where it came from; any
   * other goes through the full check.
   */
  acceptedByScan(line: number, bytes: Buffer): boolean {
    const verdict = this.scan(bytes);
    if (verdict === 0) return false;
    const scanner = this.kind === 'songs' ? SONG_SCANNER : EVENT_SCANNER;
    const source = `,"${SOURCE_FILE}":${this.fileIndex},"${SOURCE_LINE}":${line}}`;
    this.accepted.writeRecord(bytes, scanner.objectEnd, source, this.kind === 'songs');
    this.counted(verdict);
    return true;
  }

  /** The whole file is a head DuckDB reads as it is: `records` lines (`plays` of them plays) in `bytes`. */
  countedVerbatim(records: number, plays: number, bytes: number): void {
    this.records += records;
    this.plays += plays;
    this.verbatimBytes = bytes;
  }

  private counted(verdict: 1 | 2): void {
    this.records++;
    if (verdict === 2) this.plays++;
  }

  reject(line: number, reason: string, raw: string | Buffer): void {
    this.rejected++;
    const clipped = typeof raw === 'string' ? raw.slice(0, RAW_LIMIT) : clipRaw(raw);
    this.rejects.write(JSON.stringify({ file: this.file, line, reason, raw: clipped } satisfies Reject));
  }

  /** One line of a newline-delimited file: blank lines are not records; anything else is accepted or rejected. */
  line(line: number, bytes: Buffer, size: number, consumed = size + 1, crlf = false): void {
    if (this.verbatim) {
      const verdict = size <= MAX_RECORD_BYTES && !crlf && !(line === 1 && startsWithBom(bytes)) && this.scan(bytes);
      if (verdict) {
        this.counted(verdict);
        this.verbatimBytes += consumed;
        return;
      }
      this.verbatim = false;
    }
    if (size <= MAX_RECORD_BYTES && !(line === 1 && startsWithBom(bytes)) && this.acceptedByScan(line, bytes)) return;
    if (size > MAX_RECORD_BYTES) {
      this.reject(line, `record larger than the ${MAX_RECORD_BYTES}-byte limit (${size} bytes)`, bytes);
      return;
    }
    let text: string;
    try {
      text = utf8.decode(bytes);
    } catch {
      this.reject(line, 'invalid UTF-8', bytes);
      return;
    }
    if (line === 1 && text.charCodeAt(0) === 0xfeff) text = text.slice(1);
    if (BLANK.test(text)) return;
    this.record(line, text);
  }

  /** One record's text, valid UTF-8: accepted when it is one JSON object of the right shape. */
  record(line: number, text: string): void {
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (err) {
      this.reject(line, jsonErrorReason(err), text);
      return;
    }
    this.value(line, text, value);
  }

  /** A parsed record (`text` is the JSON it came from, to find duplicate keys). */
  value(line: number, text: string, value: unknown): void {
    if (hasDuplicateKey(text, value)) {
      this.reject(line, duplicateKeyReason(text, this.columns), text);
      return;
    }
    const checked = this.kind === 'songs' ? checkSong(value) : checkEvent(value);
    if (!checked.ok) {
      this.reject(line, checked.reason, text);
      return;
    }
    const out: Record<string, string | number | null> = {};
    this.columns.forEach((c, i) => (out[c.name] = checked.row[i] ?? null));
    // Where it came from, for an error DuckDB might still raise (the staging query selects only the columns).
    out[SOURCE_FILE] = this.fileIndex;
    out[SOURCE_LINE] = line;
    this.accepted.write(JSON.stringify(out));
    this.records++;
    if (this.kind === 'events' && out.page === 'NextSong') this.plays++;
  }
}

export const SOURCE_FILE = '_file';
export const SOURCE_LINE = '_line';

// One of each: a scan is synchronous, so files read at once never share one mid-record.
const SONG_SCANNER = new RecordScanner(SONG_COLUMNS, true, false);
const EVENT_SCANNER = new RecordScanner(EVENT_COLUMNS, false, true);

const startsWithBom = (b: Buffer) => b[0] === 0xef && b[1] === 0xbb && b[2] === 0xbf;

/** Streams an event file through `records`, line by line, waiting on the outputs' backpressure. */
export async function readLines(
  source: Readable,
  records: FileRecords,
  onBytes: (n: number) => void,
  signal?: AbortSignal,
): Promise<void> {
  const splitter = new LineSplitter((line, bytes, size, consumed, crlf) =>
    records.line(line, bytes, size, consumed, crlf),
  );
  try {
    for await (const chunk of source as AsyncIterable<Buffer>) {
      signal?.throwIfAborted();
      splitter.push(chunk);
      onBytes(chunk.length);
      await records.accepted.drain();
      await records.rejects.drain();
    }
  } finally {
    source.destroy();
  }
  splitter.end();
}

/** What `keepLines` saw of a newline-delimited file. */
export interface LineShape {
  /** Lines of a plain file (counting stops once a file is not plain). */
  lines: number;
  bytes: number;
  /**
   * Every line could be a record as it is: none blank, none over the size limit, no `\r`, no byte order mark, all
   * valid UTF-8, and at least one line. Only such a file may be certified whole (`eventLinePattern`).
   */
  plain: boolean;
}

/**
 * Streams `source` into the file `copyTo` as it is, counting its lines and checking only what native calls check
 * fast (`LineShape.plain`); no line is parsed. The copy is what staging reads from then on, whatever happens to
 * the input meanwhile.
 */
export async function keepLines(
  source: Readable,
  copyTo: string,
  onBytes: (n: number) => void,
  signal?: AbortSignal,
): Promise<LineShape> {
  const copy = createWriteStream(copyTo);
  let copyError: Error | undefined;
  copy.on('error', (err) => (copyError ??= err));
  let lines = 0;
  let bytes = 0;
  let plain = true;
  /** Bytes of the current line so far, and those not yet checked for UTF-8 (a character may span chunks). */
  let lineBytes = 0;
  let unchecked: Buffer | undefined;
  try {
    for await (const chunk of source as AsyncIterable<Buffer>) {
      signal?.throwIfAborted();
      if (copyError) throw copyError;
      if (!copy.write(chunk)) await once(copy, 'drain');
      if (bytes === 0 && (chunk.length < 3 || startsWithBom(chunk))) plain = false;
      bytes += chunk.length;
      onBytes(chunk.length);
      if (!plain) continue;
      if (chunk.includes(0x0d)) {
        plain = false;
        continue;
      }
      let start = 0;
      for (let nl = chunk.indexOf(0x0a); nl !== -1 && plain; nl = chunk.indexOf(0x0a, start)) {
        lineBytes += nl - start;
        if (lineBytes === 0 || lineBytes > MAX_RECORD_BYTES) plain = false;
        lines++;
        lineBytes = 0;
        start = nl + 1;
      }
      lineBytes += chunk.length - start;
      if (lineBytes > MAX_RECORD_BYTES) plain = false;
      if (!plain) continue;
      // No UTF-8 character holds a newline byte: the text before the chunk's first newline ends the carried
      // line, the text up to its last newline is checked in place (no copy), the rest is carried.
      const firstNewline = chunk.indexOf(0x0a);
      if (firstNewline === -1) {
        unchecked = unchecked ? Buffer.concat([unchecked, chunk]) : chunk;
        continue;
      }
      const lastNewline = chunk.lastIndexOf(0x0a);
      const carried = chunk.subarray(0, firstNewline);
      if (
        !isUtf8(unchecked ? Buffer.concat([unchecked, carried]) : carried) ||
        !isUtf8(chunk.subarray(firstNewline, lastNewline))
      )
        plain = false;
      unchecked = chunk.subarray(lastNewline + 1);
    }
    if (lineBytes > 0) lines++;
    if (unchecked && !isUtf8(unchecked)) plain = false;
    copy.end();
    await finished(copy);
  } finally {
    source.destroy();
    copy.destroy();
  }
  return { lines, bytes, plain: plain && lines > 0 };
}

/** Reads at most `max` bytes; undefined when the object is larger (the stream is closed at once). */
export async function readCapped(source: Readable, max = MAX_RECORD_BYTES): Promise<Buffer | undefined> {
  const parts: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of source as AsyncIterable<Buffer>) {
      size += chunk.length;
      if (size > max) return undefined;
      parts.push(chunk);
    }
  } finally {
    source.destroy();
  }
  return Buffer.concat(parts);
}

/**
 * A song file holds one JSON object, compact or pretty-printed (or an array of them, each a record). A file of
 * several one-line objects is read as newline-delimited (each line a record); anything else that cannot be read
 * is one rejected record.
 */
export function songFileRecords(bytes: Buffer, records: FileRecords): void {
  if (!startsWithBom(bytes) && records.acceptedByScan(1, bytes)) return;
  let text: string | undefined;
  try {
    text = utf8.decode(bytes);
    if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  } catch {
    // not valid UTF-8: perhaps newline-delimited with one bad line (below)
  }
  if (text !== undefined) {
    if (BLANK.test(text)) return;
    let value: unknown;
    let parseError: unknown;
    try {
      value = JSON.parse(text);
    } catch (err) {
      parseError = err;
    }
    if (parseError === undefined) {
      if (!Array.isArray(value)) records.value(1, text, value);
      else if (hasDuplicateKey(text, value)) records.reject(1, duplicateKeyReason(text, SONG_COLUMNS), text);
      else for (const v of value) records.value(1, JSON.stringify(v), v);
      return;
    }
    if (!looksNewlineDelimited(text)) {
      records.reject(lineAt(text, parseError), jsonErrorReason(parseError), text);
      return;
    }
  } else if (!looksNewlineDelimited(bytes.toString('utf8'))) {
    records.reject(firstInvalidUtf8Line(bytes), 'invalid UTF-8', bytes);
    return;
  }
  const splitter = new LineSplitter((line, b, size) => records.line(line, b, size));
  splitter.push(bytes);
  splitter.end();
}

function looksNewlineDelimited(text: string): boolean {
  const lines = text.split('\n').filter((l) => !BLANK.test(l));
  return lines.length > 1 && lines.every((l) => l.trimStart().startsWith('{'));
}

function firstInvalidUtf8Line(bytes: Buffer): number {
  let line = 1;
  let start = 0;
  for (;;) {
    const nl = bytes.indexOf(0x0a, start);
    try {
      utf8.decode(bytes.subarray(start, nl === -1 ? bytes.length : nl));
    } catch {
      return line;
    }
    if (nl === -1) return 1;
    line++;
    start = nl + 1;
  }
}

function lineAt(text: string, err: unknown): number {
  const m = /at position (\d+)/.exec(err instanceof Error ? err.message : '');
  return m ? text.slice(0, Number(m[1])).split('\n').length : 1;
}

/**
 * Why `JSON.parse` refused a record, without the record: V8's messages quote a piece of the input
 * (`Unexpected token 'x', "…" is not valid JSON`), which must not reach errors or task results.
 */
export function jsonErrorReason(err: unknown): string {
  const message = err instanceof Error ? err.message : '';
  const at = /at position (\d+)/.exec(message);
  const where = at ? ` at character ${Number(at[1]) + 1}` : '';
  const kinds: [RegExp, string][] = [
    [/Unexpected end of JSON input/, 'truncated record (unexpected end)'],
    [/Unterminated string/, 'unterminated string'],
    [/Bad control character/, 'control character in a string'],
    [/Bad (escaped character|Unicode escape)/, 'bad escape in a string'],
    [/Unexpected non-whitespace character after JSON/, 'text after the JSON value'],
    [/Expected property name/, 'expected a property name'],
    [/Expected ',' or '}'/, "expected ',' or '}'"],
    [/Expected ',' or ']'/, "expected ',' or ']'"],
    [/Expected ':'/, "expected ':'"],
    [/Exponent part is missing|No number after minus sign|Unterminated fractional number/, 'bad number'],
  ];
  const kind = kinds.find(([re]) => re.test(message))?.[1] ?? 'unexpected character';
  return `malformed JSON: ${kind}${where}`;
}

const isJsonSpace = (c: number) => c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;

/** Index of the quote closing the string that opens at `open`, in valid JSON. */
function closingQuote(text: string, open: number): number {
  let j = text.indexOf('"', open + 1);
  while (j !== -1) {
    let backslashes = 0;
    for (let p = j - 1; text.charCodeAt(p) === 0x5c; p--) backslashes++;
    if (backslashes % 2 === 0) return j;
    j = text.indexOf('"', j + 1);
  }
  return -1;
}

/** Whether the string token ending at `close` is an object key (followed by `:`). */
function isKey(text: string, close: number): boolean {
  let k = close + 1;
  while (isJsonSpace(text.charCodeAt(k))) k++;
  return text.charCodeAt(k) === 0x3a;
}

function keysIn(value: unknown): number {
  if (typeof value !== 'object' || value === null) return 0;
  if (Array.isArray(value)) return value.reduce((a: number, v) => a + keysIn(v), 0);
  let n = 0;
  for (const v of Object.values(value)) n += 1 + keysIn(v);
  return n;
}

/**
 * Whether `text` (valid JSON that parsed to `value`) has an object with the same key twice. `JSON.parse` keeps
 * the last one silently (DuckDB refuses the record): each duplicate makes the parsed value have fewer keys than
 * the text names, so counting the key tokens is enough, and cheap.
 */
export function hasDuplicateKey(text: string, value: unknown): boolean {
  let keys = 0;
  for (let i = text.indexOf('"'); i !== -1;) {
    const close = closingQuote(text, i);
    if (close === -1) return true; // not valid JSON: cannot happen after JSON.parse, but never loop
    if (isKey(text, close)) keys++;
    i = text.indexOf('"', close + 1);
  }
  return keys !== keysIn(value);
}

/** The reason for a record with a duplicate key: the key is named only when it is one of the schema's fields. */
function duplicateKeyReason(text: string, columns: readonly ColumnSpec[]): string {
  const stack: (Set<string> | null)[] = [];
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22) {
      const close = closingQuote(text, i);
      if (close === -1) break;
      const set = stack[stack.length - 1];
      if (set && isKey(text, close)) {
        const key = JSON.parse(text.slice(i, close + 1)) as string;
        if (set.has(key)) {
          return columns.some((col) => col.name === key) ? `duplicate key '${key}'` : 'duplicate key';
        }
        set.add(key);
      }
      i = close;
    } else if (c === 0x7b) stack.push(new Set());
    else if (c === 0x5b) stack.push(null);
    else if (c === 0x7d || c === 0x5d) stack.pop();
  }
  return 'duplicate key';
}
