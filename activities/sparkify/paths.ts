import { createHash } from 'node:crypto';
import { joinUri } from '../../storage/uri';

// The lake's tables are stated in the catalog; re-exported here, where the rest of the lake's names live.
export { SONG_TABLES, TABLES, type LayoutName, type StateTableName, type TableName } from './catalog';

/** A run id usable as a path segment (workflow ids may contain `/` or `:`). */
export function runSegment(runId: string): string {
  return runId.replace(/[^A-Za-z0-9._=-]/g, '_');
}

/** Short stable token for a run, used in table file names so two runs' files never share a key. */
export function runToken(runId: string): string {
  return createHash('sha256').update(runId).digest('hex').slice(0, 10);
}

/** Where a run keeps its files under the lake's `output` (names starting with `_` are ignored by table readers). */
export function runPaths(output: string, runId: string) {
  const seg = runSegment(runId);
  const staging = joinUri(output, '_staging', seg);
  return {
    staging,
    manifests: joinUri(staging, 'manifests'),
    stagedSongs: joinUri(staging, 'songs'),
    stagedEvents: joinUri(staging, 'events'),
    tables: joinUri(staging, 'tables'),
    /** Lake state built by this run (`user_days`), published to `_state/`. */
    state: joinUri(staging, 'state'),
    /** What `list_inputs` found of the song input (see song-state.ts). */
    songInput: joinUri(staging, 'song_input.json'),
    /** The song lookup this run built (published to the lake's `_state/` with its songs). */
    songLookup: joinUri(staging, 'song_lookup.parquet'),
    rejects: joinUri(output, '_rejects', seg),
    runMeta: joinUri(output, '_runs', seg),
  };
}

/** Lake-wide state kept between runs (under `_state/`, which table readers ignore). */
export function lakeStatePaths(output: string) {
  return {
    dir: joinUri(output, '_state'),
    /** The lake's lease: whoever holds it may publish (one publish at a time per lake, across servers). */
    lease: joinUri(output, '_state', 'lease'),
    /** `SongState`: the song input the published songs and artists were built from. */
    songs: joinUri(output, '_state', 'songs.json'),
    /** (title, artist_name, duration) to (song_id, artist_id), for matching plays without rebuilding songs. */
    songLookup: joinUri(output, '_state', 'song_lookup.parquet'),
    /** `user_days`, partitioned by year and month like songplays. */
    userDays: joinUri(output, '_state', 'user_days'),
  };
}

export interface Progress {
  filesDone: number;
  filesTotal: number;
  bytesDone: number;
  bytesTotal: number;
}
export type OnProgress = (p: Progress) => void;
