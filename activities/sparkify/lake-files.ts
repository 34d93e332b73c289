import { isNotFound } from '../../storage/errors';
import type { ObjectInfo, Store } from '../../storage/store';
import { joinUri } from '../../storage/uri';
import { InputDataError } from './errors';
import { runSegment } from './paths';

/**
 * How a lake says which files make up each table. Publish adds new files beside the old ones, then replaces the
 * table's marker in one atomic write, then deletes the old files: a reader that opens a table through its
 * marker sees one whole version, whatever happens to a publish meanwhile.
 */

/** Marker in each published table directory: the run that published the table, and the table's files. */
export const RUN_MARKER = '_run.json';

export interface TableMarker {
  runId: string;
  /** Every file of the table, relative to the table directory. */
  files: string[];
}

/**
 * A lake file tempoflow wrote cannot be parsed, or a table's marker names a file the lake does not have: the lake
 * was changed outside tempoflow. Retrying cannot fix it.
 */
export class LakeIntegrityError extends InputDataError {
  override name = 'LakeIntegrityError';
}

/** A JSON file of the lake, or undefined when there is none (one request; an outage keeps its own class). */
export async function readJsonIfExists<T>(store: Store, uri: string): Promise<T | undefined> {
  let text: string;
  try {
    text = (await store.read(uri)).toString('utf8');
  } catch (err) {
    if (isNotFound(err)) return undefined;
    throw err;
  }
  try {
    return JSON.parse(text) as T;
  } catch (err) {
    throw new LakeIntegrityError(`cannot parse ${uri}: ${(err as Error).message}`, { cause: err });
  }
}

export function readMarker(store: Store, tableUri: string): Promise<TableMarker | undefined> {
  return readJsonIfExists<TableMarker>(store, joinUri(tableUri, RUN_MARKER));
}

/**
 * The Parquet files of a published table, as its marker names them (all of them for a table written before
 * markers existed). Files being added or removed by a publish in progress are not among them.
 */
export async function publishedFiles(store: Store, tableUri: string): Promise<ObjectInfo[]> {
  const listing = (await store.list(tableUri)).filter((o) => o.key.endsWith('.parquet'));
  const marker = await readMarker(store, tableUri);
  if (!marker) return listing;
  const present = new Map(listing.map((o) => [o.key, o]));
  const missing = marker.files.filter((f) => !present.has(f));
  if (missing.length) {
    throw new LakeIntegrityError(
      `${joinUri(tableUri, RUN_MARKER)} names ${missing.length} file(s) the lake does not have, e.g. ${missing[0]}`,
    );
  }
  return marker.files.map((f) => present.get(f)!);
}

/** Where a run's publish journal lives while it runs, and the record of it once done. */
export function journalPaths(output: string, runId: string) {
  const seg = runSegment(runId);
  const dir = joinUri(output, '_state', 'publish');
  return {
    dir,
    active: joinUri(dir, `${seg}.json`),
    done: joinUri(output, '_runs', seg, 'publish.json'),
  };
}
