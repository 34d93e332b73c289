import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { InputDataError } from './errors';

/** Bytes in a DuckDB size such as `'2GB'`, `'512MiB'`, `'1.5 GB'`; undefined when it cannot be read. */
export function parseSize(size: string): number | undefined {
  const m = /^\s*([\d.]+)\s*([KMGT]?)(i?)B?\s*$/i.exec(size);
  if (!m) return undefined;
  const unit = { '': 0, K: 1, M: 2, G: 3, T: 4 }[(m[2] ?? '').toUpperCase() as '' | 'K' | 'M' | 'G' | 'T'];
  const base = m[3] ? 1024 : 1000;
  return Number(m[1]) * base ** unit;
}

/** A SQL string literal (paths and the like). */
export function sqlString(s: string): string {
  return `'${s.replace(/'/g, "''")}'`;
}

/**
 * DuckDB expands every path it reads (`read_parquet`, `read_json`, each element of a list too) as a glob: `*`,
 * `?` and `[` are patterns, so `/data/lake[1]/x.parquet` would read `/data/lake1/x.parquet`. A path without them
 * is read as is; in one with them each becomes a one-character class (`[[]`, `[*]`, `[?]`), which matches only
 * itself. DuckDB's globbing also splits on `\`, so a path with both a backslash and a glob character cannot be
 * read literally: refused, naming it.
 */
export function literalGlob(file: string): string {
  if (!/[*?[]/.test(file)) return file;
  if (file.includes('\\')) {
    throw new InputDataError(
      `DuckDB cannot read '${file}': a path with a backslash and one of * ? [ is always read as a pattern; rename the folder`,
    );
  }
  return file.replace(/[*?[]/g, (c) => `[${c}]`);
}

/** One file as a SQL string DuckDB reads literally (see `literalGlob`). */
export function sqlFilePath(file: string): string {
  return sqlString(literalGlob(file));
}

/** Files as a SQL list DuckDB reads literally, e.g. `read_parquet(${sqlFileList(files)})`; at least one file. */
export function sqlFileList(files: readonly string[]): string {
  if (files.length === 0) throw new Error('sqlFileList: DuckDB cannot read an empty list of files');
  return `[${files.map(sqlFilePath).join(', ')}]`;
}

/** The visible `*.parquet` files under a local directory (recursively, sorted; none when it does not exist). */
export async function parquetFilesUnder(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true }).catch(() => [] as string[]);
  return entries
    .filter((f) => f.endsWith('.parquet') && !f.split(path.sep).some((s) => s.startsWith('_') || s.startsWith('.')))
    .sort()
    .map((f) => path.join(dir, f));
}
