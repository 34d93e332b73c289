import type { DataInterval } from '../../core/types';
import type { ObjectInfo, Store } from '../../storage/store';
import { joinUri } from '../../storage/uri';
import { InputDataError } from './errors';
import { inputOutputProblem } from './locations';
import { runPaths } from './paths';
import { startRunAfresh } from './publish';
import { fingerprintSongFiles, reusableSongs, writeSongInput } from './song-state';

export interface ManifestFile {
  uri: string;
  key: string;
  size: number;
}
export interface Manifest {
  kind: 'songs' | 'logs';
  /** Chunk number: names the staging part and rejects file this chunk produces. */
  index: number;
  files: ManifestFile[];
}

export interface ListInputsArgs {
  store: Store;
  input: string;
  output: string;
  runId: string;
  dataInterval?: DataInterval | null;
  /** Build songs and artists even when the song input is the one the published ones were built from. */
  rebuildSongs?: boolean;
  /**
   * Song files per chunk. Default 2,000: a song file is a few hundred bytes, so a chunk's fixed costs (its task,
   * its DuckDB, its staged part, a part for build to read) outweighed its files at 500 (the target bench's
   * staging took 3-4 s longer with 40 chunks than with 10).
   */
  songChunkFiles?: number;
  /**
   * Log files per chunk. Default 16; bytes per log chunk (a chunk closes when it would exceed them), default
   * 128 MiB. A chunk's fixed costs (two DuckDB databases, the certification's regular expression compiled on
   * each thread, a staged part) are large: staging the target bench's 30 log files (~15 MB each), four chunks at
   * once in one process, took 14.7-15.5 CPU-s in 4 chunks of 128 MiB against 19.8-20.0 in 8 of 64 MiB and
   * 23.5-25.7 in 15 of 32 MiB. A chunk is streamed, never held in memory; its copy stays in the task's scratch.
   */
  logChunkFiles?: number;
  logChunkBytes?: number;
  signal?: AbortSignal;
}

export interface ListInputsResult {
  /** Manifest URIs, one per staging task (no song chunks when the published songs are kept). */
  songChunks: string[];
  logChunks: string[];
  songFiles: number;
  logFiles: number;
  bytes: number;
  /** Log files left out because their date is outside the data interval (or has no date in its name). */
  skippedLogFiles: number;
  /** The run whose published songs and artists this run keeps (song input unchanged), or null. */
  songsReusedFrom: string | null;
}

/** Hadoop's hidden-file rule, as Spark applies it: any path segment starting with `.` or `_`, and `*.crc`. */
export function isHidden(key: string): boolean {
  return key.split('/').some((seg) => seg.startsWith('.') || seg.startsWith('_')) || key.endsWith('.crc');
}

const LOG_NAME = /(?:^|\/)(\d{4})-(\d{2})-(\d{2})-events\.json$/;

/** The date in a daily log file name (`2018-11-01-events.json`), as epoch ms at 00:00 UTC. */
export function logFileDate(key: string): number | undefined {
  const m = LOG_NAME.exec(key);
  if (!m) return undefined;
  const t = Date.parse(`${m[1]}-${m[2]}-${m[3]}T00:00:00Z`);
  return Number.isNaN(t) ? undefined : t;
}

function chunk(files: ObjectInfo[], maxFiles: number, maxBytes: number): ObjectInfo[][] {
  const chunks: ObjectInfo[][] = [];
  let current: ObjectInfo[] = [];
  let bytes = 0;
  for (const f of files) {
    if (current.length > 0 && (current.length >= maxFiles || bytes + f.size > maxBytes)) {
      chunks.push(current);
      current = [];
      bytes = 0;
    }
    current.push(f);
    bytes += f.size;
  }
  if (current.length > 0) chunks.push(current);
  return chunks;
}

/**
 * Why the input cannot make a run, or undefined. Every run reads all songs, so without song files it would
 * publish empty `songs`/`artists` over good ones; a run without an interval rebuilds the play tables from all
 * logs, so without log files it would publish them empty. (Songs kept because they are unchanged are still
 * listed: that is not missing. An interval run with no log file in its interval is fine: nothing new to add.)
 */
function missingInput(input: string, songFiles: number, logFiles: number, fullRun: boolean): string | undefined {
  const [songDir, logDir] = [joinUri(input, 'song_data'), joinUri(input, 'log_data')];
  if (songFiles === 0 && logFiles === 0) {
    return `no input files: no .json file under ${songDir}/ or ${logDir}/ (is 'input' the folder that holds both?)`;
  }
  if (songFiles === 0) {
    return (
      `input ${input} has no song_data/: no .json file under ${songDir}/; every run reads all songs, and would ` +
      `publish empty songs and artists tables; nothing was changed`
    );
  }
  if (logFiles === 0 && fullRun) {
    return (
      `input ${input} has no log_data/: no .json file under ${logDir}/; a run without a data interval rebuilds ` +
      `songplays, users and time from all logs, and would publish them empty; nothing was changed`
    );
  }
  return undefined;
}

/**
 * Lists the input's `song_data/` and `log_data/` JSON files (hidden files skipped, log files chosen by the
 * date in their name within the data interval), writes them as chunked manifests under the run's staging
 * prefix, and returns the manifest URIs and totals: never the file lists themselves (task outputs stay small).
 * Song files are not staged when the published songs were built from exactly these files (see song-state.ts).
 */
export async function listInputs(args: ListInputsArgs): Promise<ListInputsResult> {
  const { store } = args;
  // Before anything is listed or written: runs a schedule or backfill starts were never checked by a client.
  const overlap = inputOutputProblem(args.input, args.output);
  if (overlap) throw new InputDataError(overlap);
  const paths = runPaths(args.output, args.runId);
  const visible = (o: ObjectInfo) => !isHidden(o.key) && o.key.endsWith('.json');
  const [songObjs, logObjs] = await Promise.all([
    store.list(joinUri(args.input, 'song_data')),
    store.list(joinUri(args.input, 'log_data')),
  ]);
  const songs = songObjs.filter(visible);
  let logs = logObjs.filter(visible);
  let skipped = 0;
  if (args.dataInterval) {
    const start = Date.parse(args.dataInterval.start);
    const end = Date.parse(args.dataInterval.end);
    const inScope = logs.filter((o) => {
      const d = logFileDate(o.key);
      return d !== undefined && d >= start && d < end;
    });
    skipped = logs.length - inScope.length;
    logs = inScope;
  }

  const missing = missingInput(args.input, songs.length, logObjs.filter(visible).length, !args.dataInterval);
  if (missing) throw new InputDataError(missing);
  const fingerprint = fingerprintSongFiles(songs);
  // Whatever an earlier execution (or attempt) of this run staged would be counted again: start afresh.
  await startRunAfresh(store, args.output, args.runId, { signal: args.signal });
  const songsReusedFrom = args.rebuildSongs ? null : await reusableSongs(store, args.output, fingerprint);
  await writeSongInput(store, args.output, args.runId, {
    fingerprint,
    files: songs.length,
    reusedFrom: songsReusedFrom,
  });
  const write = async (kind: 'songs' | 'logs', chunks: ObjectInfo[][]) => {
    const uris: string[] = [];
    for (const [index, files] of chunks.entries()) {
      const uri = joinUri(paths.manifests, `${kind}-${String(index).padStart(5, '0')}.json`);
      const manifest: Manifest = { kind, index, files: files.map((f) => ({ uri: f.uri, key: f.key, size: f.size })) };
      await store.write(uri, JSON.stringify(manifest));
      uris.push(uri);
    }
    return uris;
  };
  const songChunks = songsReusedFrom ? [] : await write('songs', chunk(songs, args.songChunkFiles ?? 2000, Infinity));
  const logChunks = await write('logs', chunk(logs, args.logChunkFiles ?? 16, args.logChunkBytes ?? 128 * 1024 * 1024));
  return {
    songChunks,
    logChunks,
    songFiles: songs.length,
    logFiles: logs.length,
    bytes: [...songs, ...logs].reduce((a, f) => a + f.size, 0),
    skippedLogFiles: skipped,
    songsReusedFrom,
  };
}
