import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { mapLimit } from './concurrency';
import { safeLocalPath } from './local-path';
import type { ObjectInfo, Store } from './store';
import { parseUri } from './uri';

export interface MirrorProgress {
  filesDone: number;
  filesTotal: number;
  bytesDone: number;
  bytesTotal: number;
}

export interface MirrorOptions {
  /** Parallel downloads. Default 16. */
  concurrency?: number;
  /** The multipart part size uploads used (to recompute multipart ETags). Default 8 MiB, the Store's default. */
  partSize?: number;
  onProgress?: (p: MirrorProgress) => void;
  signal?: AbortSignal;
  /** Mirror only these objects (files of other listed objects are kept, files of unlisted ones removed). */
  include?: (o: ObjectInfo) => boolean;
}

/**
 * A local directory with the objects under `prefixUri`, for readers that need files (DuckDB cannot read S3
 * here). A local prefix is its own directory, read in place. For S3, `localDir` is made to match the listing:
 * a file already there whose size and content hash match the object's ETag is kept, so an activity reading what
 * an earlier activity on the same worker wrote there downloads nothing; other objects are downloaded and files
 * not in the listing removed. Returns the directory to read.
 */
export async function mirrorPrefix(
  store: Store,
  prefixUri: string,
  localDir: string,
  opts: MirrorOptions = {},
): Promise<string> {
  const loc = parseUri(prefixUri);
  if (loc.kind === 'local') return loc.path;
  const listed = await store.list(prefixUri);
  const objects = opts.include ? listed.filter(opts.include) : listed;
  const progress: MirrorProgress = {
    filesDone: 0,
    filesTotal: objects.length,
    bytesDone: 0,
    bytesTotal: objects.reduce((a, o) => a + o.size, 0),
  };
  // Every key is checked before anything changes locally: an unsafe one refuses the whole prefix.
  const files = objects.map((o) => ({ o, file: safeLocalPath(localDir, o.key) }));
  const wanted = new Set(listed.map((o) => safeLocalPath(localDir, o.key)));
  for (const file of await listFiles(localDir)) if (!wanted.has(file)) await fs.rm(file, { force: true });
  await mapLimit(
    files,
    opts.concurrency ?? 16,
    async ({ o, file }: { o: ObjectInfo; file: string }) => {
      if (!(await matches(file, o, opts.partSize ?? 8 * 1024 * 1024))) await store.download(o.uri, file);
      progress.filesDone++;
      progress.bytesDone += o.size;
      opts.onProgress?.({ ...progress });
    },
    opts.signal,
  );
  return localDir;
}

async function listFiles(dir: string): Promise<string[]> {
  const entries = await fs.readdir(dir, { recursive: true, withFileTypes: true }).catch(() => []);
  return entries.filter((e) => e.isFile()).map((e) => path.join(e.parentPath, e.name));
}

async function matches(file: string, o: ObjectInfo, partSize: number): Promise<boolean> {
  const size = await fs
    .stat(file)
    .then((s) => s.size)
    .catch(() => -1);
  if (size !== o.size || !o.etag) return false;
  return (await s3Etag(file, size, partSize)) === o.etag;
}

/** The ETag S3 gives a file uploaded whole (MD5) or in parts of `partSize` (MD5 of the parts' MD5s, `-<parts>`). */
export async function s3Etag(file: string, size: number, partSize: number): Promise<string> {
  const handle = await fs.open(file, 'r');
  try {
    const digests: Buffer[] = [];
    const buffer = Buffer.alloc(Math.min(1024 * 1024, partSize, Math.max(size, 1)));
    for (let offset = 0; offset < size || digests.length === 0; offset += partSize) {
      const hash = createHash('md5');
      let read = 0;
      while (read < Math.min(partSize, size - offset)) {
        const want = Math.min(buffer.length, Math.min(partSize, size - offset) - read);
        const { bytesRead } = await handle.read(buffer, 0, want, offset + read);
        if (bytesRead === 0) break;
        hash.update(buffer.subarray(0, bytesRead));
        read += bytesRead;
      }
      digests.push(hash.digest());
    }
    if (size <= partSize) return digests[0]!.toString('hex');
    return `${createHash('md5').update(Buffer.concat(digests)).digest('hex')}-${digests.length}`;
  } finally {
    await handle.close();
  }
}
