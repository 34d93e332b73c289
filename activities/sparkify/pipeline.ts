import type { DataInterval } from '../../core/types';
import type { Store } from '../../storage/store';
import { mapLimit } from '../../storage/concurrency';
import { type BuildTablesResult, buildTables } from './build-tables';
import type { DuckDbOptions } from '../../worker/duckdb';
import { QualityCheckError, RejectRateError } from './errors';
import { type ListInputsResult, listInputs } from './list-inputs';
import { type PublishResult, publish } from './publish';
import { type StageResult, assessRejects, stageLogs, stageSongs } from './stage';
import { type ValidateResult, validate } from './validate';

export interface PipelineArgs {
  store: Store;
  input: string;
  output: string;
  runId: string;
  dataInterval?: DataInterval | null;
  duckdb?: DuckDbOptions;
  maxRejectRate?: number;
  rebuildSongs?: boolean;
  /** Staging chunks processed at once. Default 2. */
  parallelism?: number;
  /** Song and log files per staging chunk (`listInputs`'s defaults when unset). */
  songChunkFiles?: number;
  logChunkFiles?: number;
  signal?: AbortSignal;
}

export interface PipelineResult {
  list: ListInputsResult;
  songs: StageResult[];
  events: StageResult[];
  build: BuildTablesResult;
  quality: ValidateResult;
  published: PublishResult;
}

/**
 * The whole Sparkify run in one process, in the order the DAG runs it (list, stage chunks, build, validate,
 * publish): for tests and local use without Temporal. Throws `RejectRateError` / `QualityCheckError` before
 * publishing, so a failed run leaves the lake as it was.
 */
export async function runSparkifyPipeline(args: PipelineArgs): Promise<PipelineResult> {
  const prepared = await prepareSparkifyRun(args);
  const { store, output, runId, signal } = args;
  const published = await publish({
    store,
    output,
    runId,
    duckdb: args.duckdb,
    signal,
    dataInterval: args.dataInterval,
  });
  return { ...prepared, published };
}

/** Everything a run does before publish (list, stage, build, validate): the run is then ready to publish. */
export async function prepareSparkifyRun(args: PipelineArgs): Promise<Omit<PipelineResult, 'published'>> {
  const { store, output, runId, signal } = args;
  const base = { store, output, runId, duckdb: args.duckdb, signal };
  const list = await listInputs({
    store,
    input: args.input,
    output,
    runId,
    dataInterval: args.dataInterval,
    rebuildSongs: args.rebuildSongs,
    songChunkFiles: args.songChunkFiles,
    logChunkFiles: args.logChunkFiles,
    signal,
  });
  const p = args.parallelism ?? 2;
  const songs = await mapLimit(list.songChunks, p, (manifest) => stageSongs({ ...base, manifest }), signal);
  const events = await mapLimit(list.logChunks, p, (manifest) => stageLogs({ ...base, manifest }), signal);
  const rejects = assessRejects([...songs, ...events], args.maxRejectRate);
  if (!rejects.passed) throw new RejectRateError(rejects.message);
  const build = await buildTables({ ...base, stageResults: [...songs, ...events] });
  const quality = await validate({ ...base, stageResults: [...songs, ...events], maxRejectRate: args.maxRejectRate });
  if (!quality.passed) {
    const failed = quality.checks.filter((c) => !c.passed).map((c) => `${c.name} (${c.detail})`);
    throw new QualityCheckError(`quality checks failed: ${failed.join('; ')}; see ${quality.report}`);
  }
  return { list, songs, events, build, quality };
}
