/**
 * The Sparkify lake's catalog: every table the pipeline writes (and the lake state `user_days`), stated once.
 * The lists of columns and their order, the sort order and partitions of `writeTable`, the DDL of an empty table,
 * the keys and references validate checks, and the list of tables all derive from here. The model SQL
 * (build-tables.ts) stays SQL: test/sparkify-catalog.test.ts runs it and checks its output against this catalog.
 */
import type { ColumnType } from './schema';

/** DuckDB types of lake columns: the raw input's types, plus what the model derives. */
export type LakeColumnType = ColumnType | 'TIMESTAMP' | 'DATE';

export interface LakeColumn<Name extends string = string> {
  readonly name: Name;
  /** The model's output type (what `DESCRIBE` of the built table says). */
  readonly type: LakeColumnType;
  readonly description: string;
  /**
   * A published table whose (one-column) primary key this column's non-null values must be found in, checked by
   * validate. A plain string here (the table names derive from this catalog); `REFERENCES` checks it on load.
   */
  readonly references?: string;
}

export interface LakeTable<Name extends string = string> {
  /** `table`: published under `<output>/<name>/`; `state`: kept under `<output>/_state/<name>/` for later runs. */
  readonly kind: 'table' | 'state';
  /** What each row stands for. */
  readonly oneRowPer: string;
  /** `songs`: built from the song input alone (kept as published while that input is unchanged). */
  readonly builtFrom: 'songs' | 'events';
  readonly columns: readonly LakeColumn<Name>[];
  /** Hive partition columns, outermost first (`year=<y>/month=<m>/`). */
  readonly partitionBy: readonly Name[];
  /** Sort order of the written rows; it ends with the key, so the order is total and the files deterministic. */
  readonly orderBy: readonly Name[];
  readonly primaryKey: readonly Name[];
}

/**
 * A table spec whose partition, sort and key columns are checked against its own columns at compile time (the
 * column names are inferred from `columns` only, so a misspelled sort column is a type error).
 */
function table<const Name extends string, const Kind extends LakeTable['kind']>(
  spec: Omit<LakeTable<Name>, 'kind' | 'partitionBy' | 'orderBy' | 'primaryKey'> & {
    readonly kind: Kind;
    readonly partitionBy: readonly NoInfer<Name>[];
    readonly orderBy: readonly NoInfer<Name>[];
    readonly primaryKey: readonly NoInfer<Name>[];
  },
): LakeTable<Name> & { readonly kind: Kind } {
  return spec;
}

function col<const Name extends string>(
  name: Name,
  type: LakeColumnType,
  description: string,
  references?: string,
): LakeColumn<Name> {
  return references ? { name, type, description, references } : { name, type, description };
}

export const CATALOG = {
  songs: table({
    kind: 'table',
    oneRowPer: 'song (song_id); a song listed twice keeps its smallest version',
    builtFrom: 'songs',
    columns: [
      col('song_id', 'VARCHAR', 'the song id of the song input'),
      col('title', 'VARCHAR', 'song title'),
      col('duration', 'DOUBLE', 'length in seconds'),
      col('year', 'INTEGER', 'release year (0 when unknown)'),
      col('artist_id', 'VARCHAR', 'the artist, in artists'),
    ],
    partitionBy: ['year', 'artist_id'],
    orderBy: ['year', 'artist_id', 'song_id'],
    primaryKey: ['song_id'],
  }),
  artists: table({
    kind: 'table',
    oneRowPer: 'artist (artist_id); among several spellings, the one with coordinates and a location first',
    builtFrom: 'songs',
    columns: [
      col('artist_id', 'VARCHAR', 'the artist id of the song input'),
      col('name', 'VARCHAR', 'artist name'),
      col('location', 'VARCHAR', 'free-text location, or null'),
      col('latitude', 'DOUBLE', 'latitude, or null'),
      col('longitude', 'DOUBLE', 'longitude, or null'),
    ],
    partitionBy: [],
    orderBy: ['artist_id'],
    primaryKey: ['artist_id'],
  }),
  users: table({
    kind: 'table',
    oneRowPer: 'user with a NextSong event, as of their latest one',
    builtFrom: 'events',
    columns: [
      col('user_id', 'BIGINT', 'the user id of the events'),
      col('first_name', 'VARCHAR', 'first name at the latest play'),
      col('last_name', 'VARCHAR', 'last name at the latest play'),
      col('gender', 'VARCHAR', 'gender at the latest play'),
      col('level', 'VARCHAR', "subscription level at the latest play ('free' or 'paid')"),
    ],
    partitionBy: [],
    orderBy: ['user_id'],
    primaryKey: ['user_id'],
  }),
  time: table({
    kind: 'table',
    oneRowPer: 'distinct songplay start time',
    builtFrom: 'events',
    columns: [
      col('start_time', 'TIMESTAMP', 'UTC, millisecond precision'),
      col('hour', 'BIGINT', 'hour of the day, 0-23'),
      col('day', 'BIGINT', 'day of the month'),
      col('week', 'BIGINT', 'ISO week'),
      col('weekday', 'BIGINT', 'ISO weekday, Monday 1 .. Sunday 7'),
      col('year', 'BIGINT', 'year'),
      col('month', 'BIGINT', 'month, 1-12'),
    ],
    partitionBy: ['year', 'month'],
    orderBy: ['year', 'month', 'start_time'],
    primaryKey: ['start_time'],
  }),
  songplays: table({
    kind: 'table',
    oneRowPer: 'distinct NextSong event (ts, userId, sessionId, itemInSession); an event delivered twice is one',
    builtFrom: 'events',
    columns: [
      col('songplay_id', 'VARCHAR', "md5('ts|userId|sessionId|itemInSession'), the same on every run"),
      col('start_time', 'TIMESTAMP', 'the play, UTC'),
      col('user_id', 'BIGINT', 'the user', 'users'),
      col('level', 'VARCHAR', 'subscription level at the play'),
      col('session_id', 'BIGINT', 'session id'),
      col('location', 'VARCHAR', "the user's location"),
      col('user_agent', 'VARCHAR', "the user's browser"),
      col('song_id', 'VARCHAR', 'the song matched by title, artist name and duration, or null', 'songs'),
      col('artist_id', 'VARCHAR', "that song's artist, or null", 'artists'),
      col('year', 'BIGINT', 'year of start_time'),
      col('month', 'BIGINT', 'month of start_time'),
    ],
    partitionBy: ['year', 'month'],
    orderBy: ['year', 'month', 'start_time', 'songplay_id'],
    primaryKey: ['songplay_id'],
  }),
  user_days: table({
    kind: 'state',
    oneRowPer: "user and UTC day with plays: the user's latest play of that day (for merging interval runs)",
    builtFrom: 'events',
    columns: [
      col('user_id', 'BIGINT', 'the user'),
      col('day', 'DATE', 'UTC day of the play'),
      col('ts', 'BIGINT', 'the play, epoch milliseconds (tie-breaker 1)'),
      col('session_id', 'BIGINT', 'session id (tie-breaker 2)'),
      col('item_in_session', 'INTEGER', 'item in the session (tie-breaker 3)'),
      col('first_name', 'VARCHAR', 'first name at the play'),
      col('last_name', 'VARCHAR', 'last name at the play'),
      col('gender', 'VARCHAR', 'gender at the play'),
      col('level', 'VARCHAR', 'subscription level at the play'),
      col('year', 'BIGINT', 'year of day'),
      col('month', 'BIGINT', 'month of day'),
    ],
    partitionBy: ['year', 'month'],
    orderBy: ['year', 'month', 'day', 'user_id'],
    primaryKey: ['user_id', 'day'],
  }),
} as const;

/** Every table and state table of the lake, in the order they are built and published. */
export type LayoutName = keyof typeof CATALOG;
/** The published tables (the star schema). */
export type TableName = { [K in LayoutName]: (typeof CATALOG)[K]['kind'] extends 'table' ? K : never }[LayoutName];
/** Lake state kept beside the tables (under `_state/`). */
export type StateTableName = Exclude<LayoutName, TableName>;

export const LAYOUT_NAMES = Object.keys(CATALOG) as LayoutName[];
/** The published tables, in catalog order. */
export const TABLES: readonly TableName[] = LAYOUT_NAMES.filter((t): t is TableName => CATALOG[t].kind === 'table');
/** The tables built from the song input alone: kept as published while that input is unchanged. */
export const SONG_TABLES: readonly TableName[] = TABLES.filter((t) => CATALOG[t].builtFrom === 'songs');

export interface Reference {
  table: LayoutName;
  column: string;
  /** The referenced table and its key column. */
  to: TableName;
  key: string;
}

/** Every column that references another table's key, in catalog order (`songplays.user_id` in `users`, ...). */
export const REFERENCES: readonly Reference[] = LAYOUT_NAMES.flatMap((table) =>
  tableSpec(table).columns.flatMap((c) => {
    if (c.references === undefined) return [];
    const to = TABLES.find((t) => t === c.references);
    const key = to && tableSpec(to).primaryKey;
    if (!to || key?.length !== 1) {
      throw new Error(`catalog: ${table}.${c.name} references '${c.references}', not a table with a one-column key`);
    }
    return [{ table, column: c.name, to, key: key[0] as string }];
  }),
);

/** A table's spec (widened: the column names as plain strings). */
export function tableSpec(name: LayoutName): LakeTable {
  return CATALOG[name];
}

/** `SELECT` list of a table's columns, in catalog order. */
export function selectList(name: LayoutName): string {
  return tableSpec(name)
    .columns.map((c) => c.name)
    .join(', ');
}

/** `ORDER BY` list of a table. */
export function orderByList(name: LayoutName): string {
  return tableSpec(name).orderBy.join(', ');
}

/**
 * The type a column has when the table is read back from the lake with hive partitioning: DuckDB reads an
 * integer partition value from its folder name (`year=2018`) as a BIGINT, whatever type the file was written with.
 */
export function lakeReadType(name: LayoutName, column: LakeColumn): LakeColumnType {
  const partitioned = tableSpec(name).partitionBy.includes(column.name);
  return partitioned && (column.type === 'INTEGER' || column.type === 'BIGINT') ? 'BIGINT' : column.type;
}

/** `CREATE TABLE` column list of a table as read from the lake: stands in for a table that has no files. */
export function emptyTableDdl(name: LayoutName): string {
  return tableSpec(name)
    .columns.map((c) => `${c.name} ${lakeReadType(name, c)}`)
    .join(', ');
}
