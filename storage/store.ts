import { randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream, readdirSync, statSync } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { setImmediate as yieldToEventLoop } from 'node:timers/promises';
import {
  CopyObjectCommand,
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  S3ServiceException,
  type _Object,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { mapLimit } from './concurrency';
import { isNotFound, withStorageErrors } from './errors';
import { leanS3For, type LeanBody, type LeanS3 } from './lean-s3';
import { safeLocalPath } from './local-path';
import { createS3Client } from './s3-client';
import { joinUri, parseUri } from './uri';

export interface ObjectInfo {
  /** Full URI of the object (same scheme as the listed prefix). */
  uri: string;
  /** Path relative to the listed prefix, `/`-separated. */
  key: string;
  size: number;
  /** S3 ETag (unquoted); for local files a size/mtime fingerprint. */
  etag: string;
  /** When it was last written (S3's LastModified, a local file's mtime), in epoch milliseconds. */
  modifiedMs: number;
}

/** What can be written: bytes/text (the content itself), a stream, or `{ file }` (a local file to upload). */
export type WriteBody = Buffer | Uint8Array | string | Readable | { file: string };

/** Files and objects under `s3://bucket/prefix` or a local directory, with the same API. */
export interface Store {
  /** Every object under a prefix (recursive), sorted by key. A missing prefix lists nothing. */
  list(prefixUri: string): Promise<ObjectInfo[]>;
  read(uri: string): Promise<Buffer>;
  readStream(uri: string): Promise<Readable>;
  /** Writes an object whole: readers never see a partial one (S3 PUT/multipart; local temp file + rename). */
  write(uri: string, body: WriteBody): Promise<void>;
  /** Downloads one object to a local file. */
  download(uri: string, localFile: string): Promise<void>;
  /** Downloads every object under a prefix into a local directory (keeping relative paths); returns the count. */
  downloadPrefix(prefixUri: string, localDir: string): Promise<number>;
  /** Uploads every file under a local directory to a prefix (keeping relative paths); returns the count. */
  uploadDir(localDir: string, prefixUri: string): Promise<number>;
  exists(uri: string): Promise<boolean>;
  /**
   * Creates an object only if none exists at `uri`, atomically: of several callers racing for one URI exactly one
   * gets `true`, the others `false`, and readers never see a partial object. S3: PUT with `If-None-Match: *`;
   * local: a temp sibling hard-linked to the name. Meant for small records (journals, leases): the body is held in
   * memory for S3.
   */
  createIfAbsent(uri: string, body: WriteBody): Promise<boolean>;
  delete(uri: string): Promise<void>;
  /** Deletes everything under a prefix (local: the folder, without listing it first). */
  deletePrefix(prefixUri: string): Promise<void>;
  /** Copies one object (server-side within S3). */
  copy(from: string, to: string): Promise<void>;
  /** Moves one object: local to local a rename; otherwise a copy, then the source is deleted. */
  move(from: string, to: string): Promise<void>;
  /** Copies everything under `from` to `to` (keeping relative paths); returns the count. */
  copyPrefix(from: string, to: string): Promise<number>;
  /**
   * Moves everything under `from` to `to`. Local: one directory rename (atomic; `to` must not exist). S3: copy,
   * then delete the sources (not atomic: S3 has no rename).
   */
  renamePrefix(from: string, to: string): Promise<number>;
}

export interface StoreDeps {
  /** The S3 client to use; default one built from the environment (`createS3Client`). */
  s3Client?: S3Client;
  /** Parallel S3 requests in bulk operations. Default 16. */
  concurrency?: number;
  /** Multipart part size in bytes. Default 8 MiB (S3's minimum is 5 MiB). */
  partSize?: number;
  /**
   * Single-object GET/HEAD/PUT/DELETE through the lean signed-request path (lean-s3.ts) rather than S3Client's
   * middleware stack. Default true; `TEMPOFLOW_S3_LEAN=0` in the environment turns it off.
   */
  leanRequests?: boolean;
}

const TEMP_MARK = '.tempoflow-tmp-';

function tempSibling(file: string): string {
  return path.join(path.dirname(file), `${TEMP_MARK}${path.basename(file)}.${randomBytes(6).toString('hex')}`);
}

async function bodyBytes(body: WriteBody): Promise<Buffer | Uint8Array> {
  if (typeof body === 'string') return Buffer.from(body);
  if (body instanceof Uint8Array) return body;
  if (body instanceof Readable) {
    const chunks: Buffer[] = [];
    for await (const chunk of body) chunks.push(Buffer.from(chunk as Uint8Array));
    return Buffer.concat(chunks);
  }
  return fs.readFile(body.file);
}

function bodyToStreamOrBytes(body: WriteBody): Readable | Buffer | Uint8Array {
  if (typeof body === 'string') return Buffer.from(body);
  if (body instanceof Readable || body instanceof Uint8Array) return body;
  return createReadStream(body.file);
}

async function writeBodyToFile(file: string, body: WriteBody): Promise<void> {
  if (typeof body === 'object' && !(body instanceof Uint8Array) && !(body instanceof Readable)) {
    await fs.copyFile(body.file, file);
  } else if (body instanceof Readable) {
    await pipeline(body, createWriteStream(file));
  } else {
    await fs.writeFile(file, body);
  }
}

/**
 * Creates a local file only if the name is free: the body goes to a temp sibling, which is then hard-linked to the
 * name (`link` fails with EEXIST if the name exists, atomically, and the file appears whole).
 */
async function createLocalIfAbsent(file: string, body: WriteBody): Promise<boolean> {
  await fs.mkdir(path.dirname(file), { recursive: true });
  const tmp = tempSibling(file);
  try {
    await writeBodyToFile(tmp, body);
    await fs.link(tmp, file);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw err;
  } finally {
    await fs.rm(tmp, { force: true });
  }
}

/** Writes a local file via a temp sibling and rename, so no reader sees a half-written file. */
async function writeLocalAtomic(file: string, body: WriteBody): Promise<void> {
  await fs.mkdir(path.dirname(file), { recursive: true });
  const tmp = tempSibling(file);
  try {
    if (typeof body === 'object' && !(body instanceof Uint8Array) && !(body instanceof Readable)) {
      await fs.copyFile(body.file, tmp);
    } else if (body instanceof Readable) {
      await pipeline(body, createWriteStream(tmp));
    } else {
      await fs.writeFile(tmp, body);
    }
    await fs.rename(tmp, file);
  } catch (err) {
    await fs.rm(tmp, { force: true });
    throw err;
  }
}

/**
 * Local listings make one call per folder and per file (an input of 20,000 song files has 12,650 folders): a
 * synchronous call costs about a tenth of a promised one, so they run synchronously, yielding to the event
 * loop (heartbeats, cancellation) every `LOCAL_CALLS_PER_YIELD` calls.
 */
const LOCAL_CALLS_PER_YIELD = 256;

/** Every file under `dir` (keys relative to it, in no particular order). */
async function walk(dir: string, rel: string, out: { file: string; key: string }[]): Promise<void> {
  const pending = [{ dir, rel }];
  for (let calls = 1; pending.length > 0; calls++) {
    if (calls % LOCAL_CALLS_PER_YIELD === 0) await yieldToEventLoop();
    const d = pending.pop()!;
    let entries;
    try {
      entries = readdirSync(d.dir, { withFileTypes: true });
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') continue;
      throw err;
    }
    for (const e of entries) {
      if (e.name.startsWith(TEMP_MARK)) continue; // another writer's file in flight
      const key = d.rel ? `${d.rel}/${e.name}` : e.name;
      const full = path.join(d.dir, e.name);
      if (e.isDirectory()) pending.push({ dir: full, rel: key });
      else if (e.isFile()) out.push({ file: full, key });
    }
  }
}

function localPath(uri: string): string {
  const loc = parseUri(uri);
  if (loc.kind !== 'local') throw new Error(`internal: '${uri}' is not local`);
  return loc.path;
}

function s3Loc(uri: string): { bucket: string; key: string } {
  const loc = parseUri(uri);
  if (loc.kind !== 's3') throw new Error(`internal: '${uri}' is not S3`);
  return loc;
}

/** The URI of `key` under a prefix; under a local folder, refused if the key would escape it (`safeLocalPath`). */
function keyUri(prefixUri: string, key: string): string {
  const loc = parseUri(prefixUri);
  return loc.kind === 'local' ? safeLocalPath(loc.path, key) : joinUri(prefixUri, key);
}

function dirPrefix(key: string): string {
  return key === '' || key.endsWith('/') ? key : `${key}/`;
}

/**
 * Chunks of a local file's stream: a consumer's per-chunk work (staging's line scan and copy) costs as much at
 * 64 KiB (Node's default) as at 1 MiB; four event files streamed at once took half the CPU with 1 MiB chunks.
 */
const LOCAL_READ_CHUNK_BYTES = 1024 * 1024;

/** Builds a `Store`; the S3 client is injected (or built from the environment on first S3 use). */
export function createStore(deps: StoreDeps = {}): Store {
  let client = deps.s3Client;
  const s3 = (): S3Client => (client ??= createS3Client());
  const concurrency = deps.concurrency ?? 16;
  const partSize = deps.partSize ?? 8 * 1024 * 1024;
  const leanRequests = deps.leanRequests ?? process.env.TEMPOFLOW_S3_LEAN !== '0';
  /** The lean path for this bucket, or undefined where S3Client must do it. */
  const lean = async (bucket: string): Promise<LeanS3 | undefined> => {
    if (!leanRequests) return undefined;
    const path = leanS3For(s3());
    return (await path.handles(bucket)) ? path : undefined;
  };

  /** Every key under `prefix` (with `delimiter`: the keys at its level and its sub-"folders"), page after page. */
  async function listPages(bucket: string, prefix: string, delimiter?: string) {
    const keys: _Object[] = [];
    const folders: string[] = [];
    let token: string | undefined;
    do {
      const page = await s3().send(
        new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, Delimiter: delimiter, ContinuationToken: token }),
      );
      keys.push(...(page.Contents ?? []));
      for (const p of page.CommonPrefixes ?? []) if (p.Prefix) folders.push(p.Prefix);
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
    return { keys, folders };
  }

  /**
   * A listing is one round trip per ~1,000 keys, in order. One longer than a page is split by its "folders" (the
   * first level below the prefix that has more than one) and those are listed side by side: the full Udacity
   * song data (~385,000 keys in 26 letters) is 15 rounds of 26 instead of 385 one after the other.
   */
  async function listS3(prefixUri: string): Promise<ObjectInfo[]> {
    const { bucket, key } = s3Loc(prefixUri);
    const prefix = dirPrefix(key);
    const out: ObjectInfo[] = [];
    const add = (keys: _Object[]) => {
      for (const o of keys) {
        if (!o.Key || o.Key.endsWith('/')) continue; // "folder" markers made by consoles
        out.push({
          uri: `s3://${bucket}/${o.Key}`,
          key: o.Key.slice(prefix.length),
          size: o.Size ?? 0,
          etag: (o.ETag ?? '').replace(/"/g, ''),
          modifiedMs: o.LastModified?.getTime() ?? 0,
        });
      }
    };
    const first = await s3().send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix }));
    if (!first.IsTruncated) {
      add(first.Contents ?? []);
    } else {
      let level = await listPages(bucket, prefix, '/');
      while (level.keys.length === 0 && level.folders.length === 1)
        level = await listPages(bucket, level.folders[0]!, '/');
      add(level.keys);
      const folders = await mapLimit(level.folders, concurrency, (folder) => listPages(bucket, folder));
      for (const f of folders) add(f.keys);
    }
    return out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  }

  async function listLocal(prefixUri: string): Promise<ObjectInfo[]> {
    const root = localPath(prefixUri);
    const files: { file: string; key: string }[] = [];
    await walk(root, '', files);
    const listed: ObjectInfo[] = [];
    for (let i = 0; i < files.length; i++) {
      if (i % LOCAL_CALLS_PER_YIELD === LOCAL_CALLS_PER_YIELD - 1) await yieldToEventLoop();
      const { file, key } = files[i]!;
      // Deleted since readdir saw it (another writer at work): not there, as S3's list would say.
      const st = statSync(file, { throwIfNoEntry: false });
      if (st) {
        const modifiedMs = Math.trunc(st.mtimeMs);
        listed.push({ uri: file, key, size: st.size, etag: `${st.size}-${modifiedMs}`, modifiedMs });
      }
    }
    return listed.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  }

  async function getS3(uri: string): Promise<Readable> {
    const { bucket, key } = s3Loc(uri);
    const viaLean = await lean(bucket);
    if (viaLean) return viaLean.get(bucket, key);
    const res = await s3().send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    if (!(res.Body instanceof Readable)) throw new Error(`no body reading ${uri}`);
    return res.Body;
  }

  async function putS3(uri: string, body: WriteBody): Promise<void> {
    const { bucket, key } = s3Loc(uri);
    // Small bodies (most table files) go up in one plain PUT: about a third cheaper per request than Upload.
    const viaLean = await lean(bucket);
    if (viaLean) {
      const leanBody = await smallLeanBody(body);
      if (leanBody) return viaLean.put(bucket, key, leanBody);
    }
    const small = await smallBody(body);
    if (small) {
      await s3().send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: small }));
      return;
    }
    // lib-storage sends a multipart upload (parts in parallel) for large bodies.
    const upload = new Upload({
      client: s3(),
      params: { Bucket: bucket, Key: key, Body: bodyToStreamOrBytes(body) },
      partSize,
      queueSize: 4,
      leavePartsOnError: false,
    });
    await upload.done();
  }

  async function createS3IfAbsent(uri: string, body: WriteBody): Promise<boolean> {
    const { bucket, key } = s3Loc(uri);
    const bytes = await bodyBytes(body);
    const viaLean = await lean(bucket);
    for (let attempt = 1; ; attempt++) {
      try {
        if (viaLean) await viaLean.put(bucket, key, { bytes }, { ifNoneMatch: '*' });
        else await s3().send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: bytes, IfNoneMatch: '*' }));
        return true;
      } catch (err) {
        if (err instanceof S3ServiceException) {
          if (err.name === 'PreconditionFailed' || err.$metadata.httpStatusCode === 412) return false;
          // 409: another conditional write to this key is in flight; S3 asks to retry (its outcome decides).
          const conflict = err.name === 'ConditionalRequestConflict' || err.$metadata.httpStatusCode === 409;
          if (conflict && attempt < 10) {
            await new Promise((resolve) => setTimeout(resolve, 50 * attempt + Math.random() * 50));
            continue;
          }
        }
        throw err;
      }
    }
  }

  /** A body of at most one part as the lean path sends it (a file streamed, not read), else undefined. */
  async function smallLeanBody(body: WriteBody): Promise<LeanBody | undefined> {
    if (typeof body === 'string' || body instanceof Uint8Array) {
      const bytes = typeof body === 'string' ? Buffer.from(body) : body;
      return bytes.length <= partSize ? { bytes } : undefined;
    }
    if (body instanceof Readable) return undefined;
    const size = (await fs.stat(body.file)).size;
    return size <= partSize ? { file: body.file, size } : undefined;
  }

  /** The body as bytes when it is at most one part long, else undefined (streams are never read here). */
  async function smallBody(body: WriteBody): Promise<Buffer | Uint8Array | undefined> {
    if (typeof body === 'string') return Buffer.byteLength(body) <= partSize ? Buffer.from(body) : undefined;
    if (body instanceof Uint8Array) return body.length <= partSize ? body : undefined;
    if (body instanceof Readable) return undefined;
    return (await fs.stat(body.file)).size <= partSize ? fs.readFile(body.file) : undefined;
  }

  const store: Store = {
    async list(prefixUri) {
      return parseUri(prefixUri).kind === 's3' ? listS3(prefixUri) : listLocal(prefixUri);
    },

    async read(uri) {
      if (parseUri(uri).kind === 'local') return fs.readFile(localPath(uri));
      const chunks: Buffer[] = [];
      for await (const chunk of await getS3(uri)) chunks.push(chunk as Buffer);
      return Buffer.concat(chunks);
    },

    async readStream(uri) {
      return parseUri(uri).kind === 'local'
        ? createReadStream(localPath(uri), { highWaterMark: LOCAL_READ_CHUNK_BYTES })
        : getS3(uri);
    },

    async write(uri, body) {
      if (parseUri(uri).kind === 'local') return writeLocalAtomic(localPath(uri), body);
      return putS3(uri, body);
    },

    async download(uri, localFile) {
      await writeLocalAtomic(localFile, parseUri(uri).kind === 'local' ? { file: localPath(uri) } : await getS3(uri));
    },

    async downloadPrefix(prefixUri, localDir) {
      const objects = await store.list(prefixUri);
      // Every key is checked before the first download: an unsafe one refuses the whole prefix.
      const files = objects.map((o) => ({ uri: o.uri, file: safeLocalPath(localDir, o.key) }));
      await mapLimit(files, concurrency, (f) => store.download(f.uri, f.file));
      return objects.length;
    },

    async uploadDir(localDir, prefixUri) {
      const files: { file: string; key: string }[] = [];
      await walk(localDir, '', files);
      const targets = files.map((f) => ({ file: f.file, to: keyUri(prefixUri, f.key) }));
      await mapLimit(targets, concurrency, (t) => store.write(t.to, { file: t.file }));
      return files.length;
    },

    async exists(uri) {
      try {
        if (parseUri(uri).kind === 'local') {
          await fs.stat(localPath(uri));
        } else {
          const { bucket, key } = s3Loc(uri);
          const viaLean = await lean(bucket);
          if (viaLean) await viaLean.head(bucket, key);
          else await s3().send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
        }
        return true;
      } catch (err) {
        if (isNotFound(err)) return false;
        throw err;
      }
    },

    async createIfAbsent(uri, body) {
      if (parseUri(uri).kind === 'local') return createLocalIfAbsent(localPath(uri), body);
      return createS3IfAbsent(uri, body);
    },

    async delete(uri) {
      if (parseUri(uri).kind === 'local') return fs.rm(localPath(uri), { force: true });
      const { bucket, key } = s3Loc(uri);
      const viaLean = await lean(bucket);
      if (viaLean) return viaLean.delete(bucket, key);
      await s3().send(new DeleteObjectCommand({ Bucket: bucket, Key: key }));
    },

    async deletePrefix(prefixUri) {
      if (parseUri(prefixUri).kind === 'local') {
        await fs.rm(localPath(prefixUri), { recursive: true, force: true });
        return;
      }
      const objects = await store.list(prefixUri);
      const { bucket } = s3Loc(prefixUri);
      const batches: string[][] = [];
      for (let i = 0; i < objects.length; i += 1000) {
        batches.push(objects.slice(i, i + 1000).map((o) => s3Loc(o.uri).key));
      }
      await mapLimit(batches, 4, async (keys) => {
        const res = await s3().send(
          new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: keys.map((Key) => ({ Key })), Quiet: true } }),
        );
        const failed = res.Errors ?? [];
        if (failed.length > 0) {
          throw new Error(`could not delete ${failed.length} objects under ${prefixUri}: ${failed[0]?.Message ?? ''}`);
        }
      });
    },

    async copy(from, to) {
      const src = parseUri(from);
      const dst = parseUri(to);
      if (src.kind === 's3' && dst.kind === 's3') {
        // Server-side copy (single request up to 5 GiB; table files are far smaller).
        const copySource = `${src.bucket}/${encodeURIComponent(src.key).replace(/%2F/g, '/')}`;
        await s3().send(new CopyObjectCommand({ Bucket: dst.bucket, Key: dst.key, CopySource: copySource }));
      } else if (src.kind === 'local' && dst.kind === 'local') {
        // Lake and staging files are only ever replaced by rename, never changed in place: a hard link is a copy
        // without the bytes (a plain copy across filesystems).
        await fs.mkdir(path.dirname(dst.path), { recursive: true });
        const tmp = tempSibling(dst.path);
        await fs.link(src.path, tmp).catch(() => fs.copyFile(src.path, tmp));
        await fs.rename(tmp, dst.path).catch(async (err: unknown) => {
          await fs.rm(tmp, { force: true });
          throw err;
        });
      } else if (src.kind === 'local') {
        await store.write(to, { file: src.path });
      } else {
        await store.write(to, await getS3(from));
      }
    },

    async move(from, to) {
      const src = parseUri(from);
      const dst = parseUri(to);
      if (src.kind === 'local' && dst.kind === 'local') {
        await fs.mkdir(path.dirname(dst.path), { recursive: true });
        await fs.rename(src.path, dst.path);
        return;
      }
      await store.copy(from, to);
      await store.delete(from);
    },

    async copyPrefix(from, to) {
      const objects = await store.list(from);
      const copies = objects.map((o) => ({ from: o.uri, to: keyUri(to, o.key) }));
      await mapLimit(copies, concurrency, (c) => store.copy(c.from, c.to));
      return objects.length;
    },

    async renamePrefix(from, to) {
      const src = parseUri(from);
      const dst = parseUri(to);
      if (src.kind === 'local' && dst.kind === 'local') {
        const count = (await listLocal(from)).length;
        await fs.mkdir(path.dirname(dst.path), { recursive: true });
        await fs.rename(src.path, dst.path);
        return count;
      }
      const count = await store.copyPrefix(from, to);
      await store.deletePrefix(from);
      return count;
    },
  };
  // Outages retry, wrong credentials or buckets fail fast: classified once here for every caller.
  return withStorageErrors(store);
}
