/**
 * Explicit column types of the raw Sparkify records (instead of Spark's schema inference): a value of the wrong
 * JSON type is a reject, never a silent cast.
 */
export type ColumnType = 'VARCHAR' | 'DOUBLE' | 'BIGINT' | 'INTEGER';

export interface ColumnSpec {
  name: string;
  type: ColumnType;
  /** Must be present and not null. */
  required?: boolean;
  /** Required strings must also be non-empty. */
  nonEmpty?: boolean;
  /** Strings: at most this many bytes of UTF-8. */
  maxBytes?: number;
}

/**
 * A partition value names a folder (`artist_id=<value>`), and a folder name has at most 255 bytes: DuckDB
 * escapes a byte in at most 3, so 64 bytes always fit. A longer one would fail the songs layout at publish, for
 * every later run too; it is a reject instead.
 */
export const MAX_PARTITION_VALUE_BYTES = 64;

export const SONG_COLUMNS: readonly ColumnSpec[] = [
  { name: 'num_songs', type: 'INTEGER' },
  { name: 'artist_id', type: 'VARCHAR', required: true, nonEmpty: true, maxBytes: MAX_PARTITION_VALUE_BYTES },
  { name: 'artist_latitude', type: 'DOUBLE' },
  { name: 'artist_longitude', type: 'DOUBLE' },
  { name: 'artist_location', type: 'VARCHAR' },
  { name: 'artist_name', type: 'VARCHAR', required: true },
  { name: 'song_id', type: 'VARCHAR', required: true, nonEmpty: true },
  { name: 'title', type: 'VARCHAR', required: true },
  { name: 'duration', type: 'DOUBLE', required: true },
  { name: 'year', type: 'INTEGER', required: true },
];

export const EVENT_COLUMNS: readonly ColumnSpec[] = [
  { name: 'artist', type: 'VARCHAR' },
  { name: 'auth', type: 'VARCHAR' },
  { name: 'firstName', type: 'VARCHAR' },
  { name: 'gender', type: 'VARCHAR' },
  { name: 'itemInSession', type: 'INTEGER', required: true },
  { name: 'lastName', type: 'VARCHAR' },
  { name: 'length', type: 'DOUBLE' },
  { name: 'level', type: 'VARCHAR' },
  { name: 'location', type: 'VARCHAR' },
  { name: 'method', type: 'VARCHAR' },
  { name: 'page', type: 'VARCHAR', required: true, nonEmpty: true },
  // Epoch milliseconds written as a float in the source (`1540919166796.0`).
  { name: 'registration', type: 'DOUBLE' },
  { name: 'sessionId', type: 'BIGINT', required: true },
  { name: 'song', type: 'VARCHAR' },
  { name: 'status', type: 'INTEGER' },
  { name: 'ts', type: 'BIGINT', required: true },
  { name: 'userAgent', type: 'VARCHAR' },
  // A string: the user's integer id, or '' for logged-out visitors.
  { name: 'userId', type: 'VARCHAR', required: true },
];

export type Row = (string | number | null)[];

// With the `u` flag, a paired surrogate is one code point; only unpaired halves are category Cs.
const LONE_SURROGATE = /\p{Cs}/u;

/**
 * The JSON type of a value, for a reason: reasons end up in errors, task results and the Web UI, so they name
 * the field and the type, never the value itself.
 */
function jsonType(value: unknown): string {
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'object') return 'an object';
  if (typeof value === 'number' && !Number.isFinite(value)) return 'a number out of range';
  return `a ${typeof value}`;
}

function checkValue(col: ColumnSpec, value: unknown): string | undefined {
  if (value === null || value === undefined) {
    return col.required ? `missing required field '${col.name}'` : undefined;
  }
  switch (col.type) {
    case 'VARCHAR':
      if (typeof value !== 'string') return `'${col.name}' must be a string, got ${jsonType(value)}`;
      if (col.nonEmpty && value === '') return `'${col.name}' must not be empty`;
      // A lone surrogate (`"\ud800"`) parses in JavaScript but is not text: Parquet strings are UTF-8.
      if (LONE_SURROGATE.test(value)) return `'${col.name}' is not valid Unicode (a lone surrogate)`;
      if (col.maxBytes !== undefined && Buffer.byteLength(value, 'utf8') > col.maxBytes) {
        return `'${col.name}' is longer than ${col.maxBytes} bytes`;
      }
      return undefined;
    case 'DOUBLE':
      if (typeof value !== 'number' || !Number.isFinite(value)) {
        return `'${col.name}' must be a number, got ${jsonType(value)}`;
      }
      return undefined;
    case 'INTEGER':
    case 'BIGINT': {
      const max = col.type === 'INTEGER' ? 2 ** 31 - 1 : Number.MAX_SAFE_INTEGER;
      if (typeof value !== 'number' || !Number.isInteger(value) || Math.abs(value) > max) {
        const got =
          typeof value !== 'number' ? jsonType(value) : Number.isInteger(value) ? 'one out of range' : 'a fraction';
        return `'${col.name}' must be an integer (${col.type}), got ${got}`;
      }
      return undefined;
    }
  }
}

export type Checked = { ok: true; row: Row } | { ok: false; reason: string };

function checkColumns(record: unknown, columns: readonly ColumnSpec[]): Checked {
  if (typeof record !== 'object' || record === null || Array.isArray(record)) {
    return { ok: false, reason: 'not a JSON object' };
  }
  const obj = record as Record<string, unknown>;
  const row: Row = [];
  for (const col of columns) {
    const problem = checkValue(col, obj[col.name]);
    if (problem) return { ok: false, reason: problem };
    row.push((obj[col.name] ?? null) as string | number | null);
  }
  return { ok: true, row };
}

export function checkSong(record: unknown): Checked {
  return checkColumns(record, SONG_COLUMNS);
}

const EVENT_INDEX = Object.fromEntries(EVENT_COLUMNS.map((c, i) => [c.name, i])) as Record<string, number>;

/**
 * Event rules beyond types: `userId` is digits or empty; a `NextSong` play must say who played what (a play
 * without a user, song, artist or length cannot become a songplay and is rejected, so it is still accounted for).
 */
export function checkEvent(record: unknown): Checked {
  const checked = checkColumns(record, EVENT_COLUMNS);
  if (!checked.ok) return checked;
  const get = (name: string) => checked.row[EVENT_INDEX[name] ?? -1];
  const userId = get('userId') as string;
  if (!/^\d*$/.test(userId) || userId.length > 18) {
    return { ok: false, reason: "'userId' must be an integer id (up to 18 digits) or empty" };
  }
  if (get('page') === 'NextSong') {
    if (userId === '') return { ok: false, reason: "a 'NextSong' event without a userId" };
    for (const name of ['song', 'artist', 'length', 'level']) {
      if (get(name) === null) return { ok: false, reason: `a 'NextSong' event without '${name}'` };
    }
  }
  return checked;
}

/** `CREATE TABLE` column list for DuckDB. */
export function columnsDdl(columns: readonly ColumnSpec[]): string {
  return columns.map((c) => `"${c.name}" ${c.type}`).join(', ');
}
