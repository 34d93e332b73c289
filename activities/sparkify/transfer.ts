import path from 'node:path';
import type { ObjectInfo, Store } from '../../storage/store';
import { mapLimit } from '../../storage/concurrency';
import { assertSafeObjectKey } from '../../storage/local-path';
import type { OnProgress } from './paths';

/** Downloads objects to local files in parallel, reporting progress per file. */
export async function downloadAll(
  store: Store,
  items: readonly { o: ObjectInfo; local: string }[],
  opts: { concurrency?: number; onProgress?: OnProgress; signal?: AbortSignal } = {},
): Promise<void> {
  // Callers build `local` from the key: a key with '..' would already have been folded into a path outside
  // their folder, so the key itself is checked, for every item before the first download.
  for (const { o, local } of items) assertSafeObjectKey(o.key, path.dirname(local));
  const progress = {
    filesDone: 0,
    filesTotal: items.length,
    bytesDone: 0,
    bytesTotal: items.reduce((a, x) => a + x.o.size, 0),
  };
  await mapLimit(
    items,
    opts.concurrency ?? 16,
    async ({ o, local }) => {
      await store.download(o.uri, local);
      progress.filesDone++;
      progress.bytesDone += o.size;
      opts.onProgress?.({ ...progress });
    },
    opts.signal,
  );
}
