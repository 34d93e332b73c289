import { createHash } from 'node:crypto';
import type { ObjectInfo, Store } from '../../storage/store';
import { joinUri } from '../../storage/uri';
import { InputDataError } from './errors';
import { readJsonIfExists, readMarker } from './lake-files';
import { lakeStatePaths, runPaths } from './paths';

/**
 * Songs and artists depend on the song input only, and it rarely changes while daily event logs keep coming.
 * A run whose song input is the one the published songs were built from (same keys, ETags and sizes) keeps
 * them, and matches its plays against the song lookup persisted with them.
 */

/** What the lake's published songs and artists were built from (`_state/songs.json`). */
export interface SongState {
  /** `fingerprintSongFiles` of the song input. */
  fingerprint: string;
  files: number;
  /** The run that built and published them (also the `runId` in `songs/_run.json`). */
  runId: string;
}

/** What `list_inputs` found for this run (`_staging/<run>/song_input.json`). */
export interface SongInput {
  fingerprint: string;
  files: number;
  /** The run whose songs this run keeps, or null when this run builds songs and artists. */
  reusedFrom: string | null;
}

/** A digest of the song files' keys, ETags and sizes: it changes when any file is added, removed or rewritten. */
export function fingerprintSongFiles(files: readonly ObjectInfo[]): string {
  const hash = createHash('sha256');
  for (const f of [...files].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0))) {
    hash.update(`${f.key}\t${f.etag}\t${f.size}\n`);
  }
  return hash.digest('hex');
}

export function readSongState(store: Store, output: string): Promise<SongState | undefined> {
  return readJsonIfExists<SongState>(store, lakeStatePaths(output).songs);
}

/**
 * The published songs can be kept when the lake's song state has this fingerprint, its lookup exists, and the
 * published songs table is the one that state describes (a crash between publishing songs and writing the
 * state makes them disagree, and then songs are rebuilt).
 */
export async function reusableSongs(store: Store, output: string, fingerprint: string): Promise<string | null> {
  const state = await readSongState(store, output);
  if (state?.fingerprint !== fingerprint) return null;
  const marker = await readMarker(store, joinUri(output, 'songs'));
  if (marker?.runId !== state.runId) return null;
  if (!(await store.exists(lakeStatePaths(output).songLookup))) return null;
  return state.runId;
}

export async function writeSongInput(store: Store, output: string, runId: string, input: SongInput): Promise<void> {
  await store.write(runPaths(output, runId).songInput, JSON.stringify(input, null, 2) + '\n');
}

/** This run's song input; a run staged before song tracking existed (no file) rebuilds songs. */
export async function readSongInput(store: Store, output: string, runId: string): Promise<SongInput> {
  return (
    (await readJsonIfExists<SongInput>(store, runPaths(output, runId).songInput)) ?? {
      fingerprint: '',
      files: 0,
      reusedFrom: null,
    }
  );
}

/**
 * For a run that keeps the published songs: fails when the lake's songs changed since `list_inputs` looked
 * (another run published songs from a different song input in between), since this run's plays would be
 * matched against songs that are no longer the lake's.
 */
export async function assertSongsStillPublished(store: Store, output: string, input: SongInput): Promise<void> {
  if (!input.reusedFrom) return;
  const state = await readSongState(store, output);
  if (state?.fingerprint !== input.fingerprint || state.runId !== input.reusedFrom) {
    throw new InputDataError(
      `the lake's songs changed while this run was running (built by run ${state?.runId ?? 'none'}, this run ` +
        `planned on run ${input.reusedFrom}'s): run it again`,
    );
  }
}
