import { realpathSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { canonicalLocationSyntax } from '../core/locations';

/** A parsed storage location: an S3 bucket + key, or an absolute local path. */
export type Location = { kind: 's3'; bucket: string; key: string } | { kind: 'local'; path: string };

/**
 * Parses `s3://bucket/key...`, `file:///abs/path` or a local path (relative paths resolve against the working
 * directory). `s3a://`/`s3n://` (Hadoop spellings, as in the Spark job's config) are read as `s3://`.
 */
export function parseUri(uri: string): Location {
  const s3 = /^s3[an]?:\/\/([^/]+)\/?(.*)$/.exec(uri);
  if (s3) return { kind: 's3', bucket: s3[1] ?? '', key: s3[2] ?? '' };
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(uri) && !uri.startsWith('file://')) {
    throw new Error(`unsupported storage URI '${uri}' (use s3://bucket/prefix or a local path)`);
  }
  const p = uri.startsWith('file://') ? fileURLToPath(uri) : uri;
  return { kind: 'local', path: path.resolve(p) };
}

/**
 * The one spelling of a storage location, for comparing locations and naming them in locks and messages:
 * `s3a://`/`s3n://` -> `s3://`, no trailing or duplicate slashes, `.`/`..` segments resolved (as `parseUri` does:
 * lexically, before symlinks), local paths absolute with symlinks resolved (the realpath of the longest existing
 * prefix, plus the part that does not exist yet). `file://` URLs become paths.
 */
export function canonicalUri(uri: string): string {
  const loc = parseUri(uri);
  if (loc.kind === 's3') return canonicalLocationSyntax(uri);
  let existing = loc.path;
  const missing: string[] = [];
  for (;;) {
    try {
      return path.join(realpathSync.native(existing), ...missing);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      const parent = path.dirname(existing);
      if ((code !== 'ENOENT' && code !== 'ENOTDIR') || parent === existing) return loc.path;
      missing.unshift(path.basename(existing));
      existing = parent;
    }
  }
}

export function isS3Uri(uri: string): boolean {
  return /^s3[an]?:\/\//.test(uri);
}

/** Joins path segments onto a URI with `/`, never doubling separators. */
export function joinUri(base: string, ...parts: string[]): string {
  let out = base.replace(/\/+$/, '');
  for (const part of parts) {
    const p = part.replace(/^\/+|\/+$/g, '');
    if (p) out = `${out}/${p}`;
  }
  return out;
}

/** The last segment of a URI (its file name). */
export function baseName(uri: string): string {
  const trimmed = uri.replace(/\/+$/, '');
  return trimmed.slice(trimmed.lastIndexOf('/') + 1);
}
