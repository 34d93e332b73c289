/**
 * A fast, conservative check of one raw record (an event line or a song file), in bytes: it says "accepted"
 * only for records the full check in `records.ts` (UTF-8 decode, `JSON.parse`, duplicate keys, the schema's
 * rules) would accept too, and whose raw JSON DuckDB reads to exactly the values staging would write from the
 * parsed record. Anything else, including every record the full check rejects, is "unknown" and goes through
 * the full check, which decides as it always has. So the staged rows and the rejects are the same either way;
 * the common record just costs one pass over its bytes instead of a decode, a parse and a re-serialisation.
 *
 * What it accepts: a flat JSON object (no nested object or array) starting at the record's first byte, keys
 * without escapes and not starting with `_` (staging appends `_file`/`_line`), no key twice, strings without
 * raw control characters and without `\uD800`-`\uDFFF` escapes (lone surrogates are rejects; pairs are rare),
 * numbers without an exponent, at most 20 characters and not a negative zero (DuckDB keeps `-0.0`, while
 * `JSON.stringify` writes `0`), integer columns holding plain integers small enough to be exact (9 digits for
 * INTEGER, 15 for BIGINT), and every rule of `checkSong` / `checkEvent`. The caller checks the size limit, the
 * byte order mark and UTF-8 validity first.
 */
import { type ColumnSpec, EVENT_COLUMNS } from './schema';

/** The scan's verdict: 0 = decide with the full check; 1 = accepted; 2 = accepted, a `NextSong` event. */
export type ScanVerdict = 0 | 1 | 2;

// Kinds of value seen for a column in the record being scanned.
const ABSENT = 0;
const NULL = 1;
const STRING = 2;
/** An integer of at most 9 digits (fits INTEGER and BIGINT exactly). */
const INT9 = 3;
/** An integer of at most 15 digits (fits BIGINT, below 2^53). */
const INT15 = 4;
/** Any other number the scan accepts (a fraction, or a longer integer): DOUBLE only. */
const NUMBER = 5;
const OTHER = 6;

const QUOTE = 0x22;
const BACKSLASH = 0x5c;

const isHex = (c: number) => (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x46) || (c >= 0x61 && c <= 0x66);
const isDigit = (c: number) => c >= 0x30 && c <= 0x39;

export class RecordScanner {
  private readonly names: Buffer[];
  private readonly byHash = new Map<number, number>();
  private readonly kind: Uint8Array;
  private readonly start: Int32Array;
  private readonly end: Int32Array;
  private readonly escaped: Uint8Array;
  private readonly page: number;
  private readonly userId: number;
  private readonly playFields: number[];
  /** The columns of the last record's keys, in its order (255: another key); a guess, never trusted. */
  private readonly order: Uint8Array;
  /** After an accepted scan: the index just past the object's closing brace. */
  objectEnd = 0;

  /**
   * @param multiline whether `\n` and `\r` count as whitespace between tokens (a pretty-printed song file); an
   *   event line is one line, and DuckDB must see it as one.
   * @param events whether to apply the event rules (`checkEvent`) on top of the column types.
   */
  constructor(
    private readonly columns: readonly ColumnSpec[],
    private readonly multiline: boolean,
    private readonly events: boolean,
  ) {
    if (columns.length > 31) throw new Error('RecordScanner: at most 31 columns');
    this.names = columns.map((c) => Buffer.from(c.name, 'latin1'));
    this.names.forEach((name, i) => {
      const h = hashOf(name, 0, name.length);
      if (this.byHash.has(h)) throw new Error(`RecordScanner: columns share a hash (${columns[i]?.name})`);
      this.byHash.set(h, i);
    });
    const n = columns.length;
    this.kind = new Uint8Array(n);
    this.start = new Int32Array(n);
    this.end = new Int32Array(n);
    this.escaped = new Uint8Array(n);
    this.order = new Uint8Array(2 * n).fill(255);
    const index = (name: string) => columns.findIndex((c) => c.name === name);
    this.page = index('page');
    this.userId = index('userId');
    this.playFields = ['song', 'artist', 'length', 'level'].map(index);
  }

  private isSpace(c: number): boolean {
    return c === 0x20 || c === 0x09 || (this.multiline && (c === 0x0a || c === 0x0d));
  }

  private skipSpace(b: Uint8Array, i: number, e: number): number {
    while (i < e && this.isSpace(b[i] as number)) i++;
    return i;
  }

  /** The column a key's bytes name, -1 for another key. */
  private column(b: Uint8Array, s: number, e: number, h: number): number {
    const col = this.byHash.get(h);
    return col !== undefined && this.isName(col, b, s, e) ? col : -1;
  }

  private isName(col: number, b: Uint8Array, s: number, e: number): boolean {
    const name = this.names[col] as Buffer;
    if (name.length !== e - s) return false;
    for (let k = 0; k < name.length; k++) if (name[k] !== b[s + k]) return false;
    return true;
  }

  /** Scans `b[s, e)`, one record. */
  scan(b: Uint8Array, s: number, e: number): ScanVerdict {
    const { kind, start, end, escaped } = this;
    kind.fill(ABSENT);
    let seen = 0;
    let keys = 0;
    let otherKeys: string[] | undefined;
    let i = s;
    if (b[i] !== 0x7b) return 0;
    i = this.skipSpace(b, i + 1, e);
    if (b[i] === 0x7d) return 0; // {}: misses required fields
    for (;;) {
      // A key: no escapes, no control characters.
      if (i >= e || b[i] !== QUOTE) return 0;
      const ks = ++i;
      for (;;) {
        if (i >= e) return 0;
        const c = b[i] as number;
        if (c === QUOTE) break;
        if (c === BACKSLASH || c < 0x20) return 0;
        i++;
      }
      const ke = i;
      i = this.skipSpace(b, i + 1, e);
      if (b[i] !== 0x3a) return 0;
      i = this.skipSpace(b, i + 1, e);
      // Records of one producer list their keys in one order: try the column that came next last time first.
      const guess = this.order[keys] as number;
      const col = guess < 255 && this.isName(guess, b, ks, ke) ? guess : this.column(b, ks, ke, hashOf(b, ks, ke));
      if (keys < this.order.length) this.order[keys] = col < 0 ? 255 : col;
      keys++;
      if (col < 0) {
        if (b[ks] === 0x5f) return 0; // `_…`: might clash with the `_file`/`_line` staging appends
        // Distinct bytes are distinct keys (no escapes, valid UTF-8). Rare in real data: a plain list.
        const key = Buffer.from(b.buffer, b.byteOffset + ks, ke - ks).toString('latin1');
        otherKeys ??= [];
        if (otherKeys.includes(key)) return 0;
        otherKeys.push(key);
      } else {
        const bit = 1 << col;
        if (seen & bit) return 0; // duplicate key
        seen |= bit;
      }

      // A value: a scalar.
      const c = b[i] as number;
      let valueKind: number;
      if (c === QUOTE) {
        const vs = ++i;
        let esc = 0;
        for (;;) {
          if (i >= e) return 0;
          const d = b[i] as number;
          if (d === QUOTE) break;
          if (d < 0x20) return 0;
          if (d === BACKSLASH) {
            esc = 1;
            const x = b[i + 1] as number;
            if (x === 0x75) {
              // \uXXXX, not a surrogate half (\uD800-\uDFFF)
              if (i + 5 >= e) return 0;
              const h1 = b[i + 2] as number;
              if (h1 === 0x64 || h1 === 0x44) return 0;
              if (!isHex(h1) || !isHex(b[i + 3] as number) || !isHex(b[i + 4] as number) || !isHex(b[i + 5] as number))
                return 0;
              i += 6;
              continue;
            }
            // " \ / b f n r t
            if (
              x !== 0x22 &&
              x !== 0x5c &&
              x !== 0x2f &&
              x !== 0x62 &&
              x !== 0x66 &&
              x !== 0x6e &&
              x !== 0x72 &&
              x !== 0x74
            )
              return 0;
            i += 2;
            continue;
          }
          i++;
        }
        if (col >= 0) {
          start[col] = vs;
          end[col] = i;
          escaped[col] = esc;
        }
        i++;
        valueKind = STRING;
      } else if (c === 0x2d || isDigit(c)) {
        const ns = i;
        if (c === 0x2d) i++;
        let digits = 0;
        let nonZero = false;
        if (b[i] === 0x30) {
          i++;
          digits = 1;
        } else {
          while (i < e && isDigit(b[i] as number)) {
            if (b[i] !== 0x30) nonZero = true;
            i++;
            digits++;
          }
          if (digits === 0) return 0;
        }
        let integer = true;
        if (b[i] === 0x2e) {
          integer = false;
          i++;
          const fs = i;
          while (i < e && isDigit(b[i] as number)) {
            if (b[i] !== 0x30) nonZero = true;
            i++;
          }
          if (i === fs) return 0;
        }
        const x = b[i];
        if (x === 0x65 || x === 0x45) return 0; // an exponent: let the full check decide
        if (i - ns > 20) return 0;
        if (c === 0x2d && !nonZero) return 0; // negative zero
        valueKind = !integer ? NUMBER : digits <= 9 ? INT9 : digits <= 15 ? INT15 : NUMBER;
      } else if (c === 0x6e && b[i + 1] === 0x75 && b[i + 2] === 0x6c && b[i + 3] === 0x6c) {
        i += 4;
        valueKind = NULL;
      } else if (c === 0x74 && b[i + 1] === 0x72 && b[i + 2] === 0x75 && b[i + 3] === 0x65) {
        i += 4;
        valueKind = OTHER;
      } else if (c === 0x66 && b[i + 1] === 0x61 && b[i + 2] === 0x6c && b[i + 3] === 0x73 && b[i + 4] === 0x65) {
        i += 5;
        valueKind = OTHER;
      } else {
        return 0; // an object, an array, or not JSON
      }
      if (col >= 0) kind[col] = valueKind;

      i = this.skipSpace(b, i, e);
      const sep = b[i];
      if (sep === 0x2c) {
        i = this.skipSpace(b, i + 1, e);
        continue;
      }
      if (sep !== 0x7d) return 0;
      i++;
      break;
    }
    this.objectEnd = i;
    if (this.skipSpace(b, i, e) !== e) return 0;
    return this.checkColumns(b);
  }

  /** The schema's rules over the kinds of value seen: accepted only when `checkSong`/`checkEvent` accepts. */
  private checkColumns(b: Uint8Array): ScanVerdict {
    const { kind, columns } = this;
    for (let k = 0; k < columns.length; k++) {
      const col = columns[k] as ColumnSpec;
      const t = kind[k];
      if (t === ABSENT || t === NULL) {
        if (col.required) return 0;
        continue;
      }
      switch (col.type) {
        case 'VARCHAR':
          if (t !== STRING) return 0;
          if (col.nonEmpty && this.end[k] === this.start[k]) return 0;
          // Unescaped, its bytes are the value's UTF-8; escaped, the full check measures it.
          if (
            col.maxBytes !== undefined &&
            (this.escaped[k] || (this.end[k] as number) - (this.start[k] as number) > col.maxBytes)
          )
            return 0;
          break;
        case 'DOUBLE':
          if (t !== INT9 && t !== INT15 && t !== NUMBER) return 0;
          break;
        case 'INTEGER':
          if (t !== INT9) return 0;
          break;
        case 'BIGINT':
          if (t !== INT9 && t !== INT15) return 0;
          break;
      }
    }
    if (!this.events) return 1;
    // userId: digits only, at most 18 (written plainly: an escaped one goes to the full check).
    const u = this.userId;
    if (this.escaped[u]) return 0;
    const us = this.start[u] as number;
    const ue = this.end[u] as number;
    if (ue - us > 18) return 0;
    for (let k = us; k < ue; k++) if (!isDigit(b[k] as number)) return 0;
    const p = this.page;
    if (this.escaped[p]) return 0;
    if (!isNextSong(b, this.start[p] as number, this.end[p] as number)) return 1;
    if (ue === us) return 0; // a play without a user
    for (const f of this.playFields) if (kind[f] === ABSENT || kind[f] === NULL) return 0;
    return 2;
  }
}

const NEXT_SONG = Buffer.from('NextSong', 'latin1');

function isNextSong(b: Uint8Array, s: number, e: number): boolean {
  if (e - s !== NEXT_SONG.length) return false;
  for (let k = 0; k < NEXT_SONG.length; k++) if (b[s + k] !== NEXT_SONG[k]) return false;
  return true;
}

function hashOf(b: Uint8Array, s: number, e: number): number {
  let h = 0;
  for (let i = s; i < e; i++) h = (Math.imul(h, 31) + (b[i] as number)) | 0;
  return h;
}

/**
 * An RE2 pattern (DuckDB's `regexp_full_match`) for event lines in the common shape: compact JSON, every column's
 * key once in the schema's order, nothing else. It matches a subset of the lines `RecordScanner` accepts, and
 * the scan's verdict on such a line is 2 (a play) exactly when it holds `"page":"NextSong"`, else 1. So a file
 * whose every line matches stages exactly as the scan would stage it, without JS reading each line.
 */
export function eventLinePattern(columns: readonly ColumnSpec[] = EVENT_COLUMNS): string {
  const char = String.raw`[^"\\\x00-\x1f]`;
  // A string the scan takes as it is: no raw control character, simple escapes, \u escapes that are no surrogate.
  const text = String.raw`"(?:[^"\\\x00-\x1f]|\\["\\/bfnrt]|\\u[0-9a-cA-Ce-fE-F][0-9a-fA-F]{3})*"`;
  const int9 = '(?:0|-?[1-9][0-9]{0,8})';
  const int15 = '(?:0|-?[1-9][0-9]{0,14})';
  // At most 20 characters, no exponent, never a negative zero.
  const double = String.raw`(?:0(?:\.[0-9]{1,5})?|-?[1-9][0-9]{0,12}(?:\.[0-9]{1,5})?|-0\.[0-9]{0,4}[1-9])`;
  // RE2 has no lookahead: "anything but NextSong" spelled out (shorter, longer, or differing at some character).
  const next = 'NextSong';
  const notNextSong = [`${char}{1,${next.length - 1}}`, `${char}{${next.length + 1},}`].concat(
    [...next].map((c, k) => `${next.slice(0, k)}[^${c}${String.raw`"\\\x00-\x1f`}]${char}{${next.length - 1 - k}}`),
  );
  const value = (c: ColumnSpec, play: boolean): string => {
    if (c.maxBytes !== undefined) throw new Error(`eventLinePattern: '${c.name}' has a byte limit RE2 cannot count`);
    // The scan reads page and userId only unescaped.
    if (c.name === 'page') return play ? `"${next}"` : `"(?:${notNextSong.join('|')})"`;
    if (c.name === 'userId') return play ? '"[0-9]{1,18}"' : '"[0-9]{0,18}"';
    const typed = {
      VARCHAR: c.nonEmpty ? text.replace(')*"', ')+"') : text,
      INTEGER: int9,
      BIGINT: int15,
      DOUBLE: double,
    }[c.type];
    const nullable = !c.required && !(play && PLAY_FIELDS.includes(c.name));
    return nullable ? `(?:null|${typed})` : typed;
  };
  const line = (play: boolean) => `\\{${columns.map((c) => `"${c.name}":${value(c, play)}`).join(',')}\\}`;
  return `(?:${line(true)})|(?:${line(false)})`;
}

/** A play must say who played what (`checkEvent`). */
const PLAY_FIELDS = ['song', 'artist', 'length', 'level'];
