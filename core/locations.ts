/**
 * Purely syntactic canonical form of a storage location (no file system, no node imports: usable in workflow
 * code, where it keys the runner's `exclusiveBy` locks). Two spellings of one location that differ only in
 * - the scheme alias: `s3a://`, `s3n://`, `S3://` -> `s3://`; `file:///x` -> `/x`,
 * - trailing or duplicate slashes,
 * - `.` and `..` segments,
 * get the same string; a string already in this form is returned unchanged. Relative local paths stay relative
 * and symlinks are not followed (that needs the file system: see `canonicalUri` in storage/uri.ts).
 * Within S3 keys, `//`, `.` and `..` are literal characters, so two different prefixes may get one form: for a
 * lock key that only serialises more, never less.
 */
export function canonicalLocationSyntax(location: string): string {
  const s3 = /^s3[an]?:\/\/([^/]*)(.*)$/i.exec(location);
  if (s3) {
    const key = normalizeSegments(s3[2] ?? '', true);
    return `s3://${s3[1] ?? ''}${key === '/' ? '' : key}`;
  }
  const file = /^file:\/\/(?:localhost)?(\/.*)$/i.exec(location);
  if (file) return normalizeSegments(safeDecode(file[1] ?? '/'), true);
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(location)) return location; // another scheme: not ours to rewrite
  if (location === '') return location;
  return normalizeSegments(location, location.startsWith('/'));
}

function safeDecode(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

/** `a//b/./c/../d/` -> `a/b/d`; absolute paths keep their leading `/` and never go above it. */
function normalizeSegments(p: string, absolute: boolean): string {
  const out: string[] = [];
  for (const segment of p.split('/')) {
    if (segment === '' || segment === '.') continue;
    if (segment === '..') {
      if (out.length > 0 && out[out.length - 1] !== '..') out.pop();
      else if (!absolute) out.push('..');
      continue;
    }
    out.push(segment);
  }
  const joined = out.join('/');
  return absolute ? `/${joined}` : joined || '.';
}
