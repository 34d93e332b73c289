import { asyncLocalStorage, cancellationSignal } from '@temporalio/activity';
import { NonRetryableTaskError } from '../../core/errors';
import type { Json, TaskActivity, TaskContext } from '../../core/types';
import { keepAlive, reportProgress } from '../heartbeat';
import type { LeaseOptions } from '../../storage/lease';
import type { Store } from '../../storage/store';
import type { BuildTablesResult } from './build-tables';
import {
  type BuildMonthResult,
  type BuildSongsResult,
  type PlayMonth,
  buildPlayMonth,
  buildSongs,
  finishBuild,
} from './build-partitioned';
import type { DuckDbOptions } from '../../worker/duckdb';
import { InputDataError } from './errors';
import { listInputs } from './list-inputs';
import { checkLogsArrived } from './wait-for-logs';
import type { OnProgress } from './paths';
import { publish } from './publish';
import { runCache } from './run-cache';
import { type StageResult, assessRejects, stageLogs, stageSongs } from './stage';
import { validate } from './validate';

export interface SparkifyActivityDeps {
  store: Store;
  duckdb: DuckDbOptions;
  /** Timing of a lake's lease, held while publishing (tests shorten it). */
  lakeLease?: LeaseOptions;
}

/** Staging totals per kind, passed from `build_tables` to `validate` (validate sees only its direct upstream). */
interface StageTotals {
  kind: 'songs' | 'events';
  files: number;
  records: number;
  rejected: number;
}

/**
 * Heartbeats carry progress (repeated by `keepAlive` around every task, see `userErrors`); outside an activity
 * (plain calls) they are no-ops.
 */
function temporal(): { onProgress: OnProgress; signal?: AbortSignal } {
  if (!asyncLocalStorage.getStore()) return { onProgress: () => undefined };
  return { onProgress: (p) => reportProgress(p), signal: cancellationSignal() };
}

function stringParam(ctx: TaskContext, name: string): string {
  const v = ctx.params[name];
  if (typeof v !== 'string' || v.trim() === '') {
    throw new NonRetryableTaskError(
      `param '${name}' must be a non-empty string (an s3:// URI or a local path)`,
      'BadParam',
    );
  }
  return v;
}

function maxRejectRate(ctx: TaskContext): number {
  const v = ctx.params.maxRejectRate ?? 0.01;
  if (typeof v !== 'number' || !(v >= 0 && v <= 1)) {
    throw new NonRetryableTaskError(
      `param 'maxRejectRate' must be a number in [0, 1], got ${JSON.stringify(v)}`,
      'BadParam',
    );
  }
  return v;
}

/** Every staging result among the upstream outputs (a mapped upstream gives a list; a skipped one is absent). */
function stageResults(ctx: TaskContext): StageResult[] {
  const isStage = (x: unknown): x is StageResult =>
    typeof x === 'object' && x !== null && 'kind' in x && 'records' in x && 'rejected' in x;
  const out: StageResult[] = [];
  for (const v of Object.values(ctx.upstream)) {
    for (const x of Array.isArray(v) ? v : [v]) if (isStage(x)) out.push(x);
  }
  return out;
}

function totals(results: StageResult[]): StageTotals[] {
  return (['songs', 'events'] as const).map((kind) => {
    const of = results.filter((r) => r.kind === kind);
    return {
      kind,
      files: of.reduce((a, r) => a + r.files, 0),
      records: of.reduce((a, r) => a + r.records, 0),
      rejected: of.reduce((a, r) => a + r.rejected, 0),
    };
  });
}

/**
 * Bad input is not fixed by retrying: fail the task at once, with the message naming file/line or counts.
 * Storage faults keep their class (storage/errors.ts): outages retry, access errors do not.
 * The task heartbeats every few seconds while it runs, however long one step (a DuckDB statement, an upload,
 * a storage retry loop) takes, so only a dead worker is timed out.
 */
function userErrors(fn: (ctx: TaskContext) => Promise<Json>): TaskActivity {
  return async (ctx) => {
    try {
      return await keepAlive(() => fn(ctx), { message: ctx.taskId.replace(/_/g, ' ') });
    } catch (err) {
      if (err instanceof InputDataError) throw new NonRetryableTaskError(err.message, err.name, { cause: err });
      throw err;
    }
  };
}

const json = (x: unknown): Json => JSON.parse(JSON.stringify(x)) as Json;

/**
 * The Sparkify DAG's task activities. Data moves by URI (manifests, staged Parquet); outputs are small JSON.
 * - `sparkifyWaitForLogs`: a sensor's check: `{ done, detail, output? }`, done when the input has a log file for
 *   every day of `ctx.dataInterval` (at once without an interval, or with param `waitForLogs` false); `detail`
 *   names the missing days.
 * - `sparkifyListInputs`: params `input`, `output`, `rebuildSongs`; `ctx.dataInterval` picks daily log files.
 *   Returns `{ songChunks: string[], logChunks: string[], songFiles, logFiles, bytes, skippedLogFiles,
 *   songsReusedFrom }` (no song chunks when the song input is unchanged since the published songs).
 * - `sparkifyStageSongs` / `sparkifyStageLogs`: mapped; `ctx.item` is one manifest URI. Return a `StageResult`
 *   `{ kind, files, bytes, records, rejected, plays, part, rejects }`.
 * - `sparkifyBuildTables`: upstream = the staging tasks (lists of StageResult). Fails (non-retryable
 *   `RejectRateError`) when rejects exceed param `maxRejectRate` (default 0.01); else builds the tables.
 *   Returns `{ rows: {songs?, artists?, users, time, songplays}, files, tables, songsReusedFrom, stageTotals,
 *   rejects }`.
 * - `sparkifyValidate`: upstream `build_tables`. Returns `{ passed, checks, report }`; fails (non-retryable
 *   `QualityCheckFailed`) when a check fails, so publish does not run.
 * - `sparkifyPublish`: swaps the staged tables into `output`. Returns `{ files: {table: n}, swapped }`.
 */
export function createSparkifyActivities(deps: SparkifyActivityDeps) {
  const { store, duckdb } = deps;
  const stageArgs = (ctx: TaskContext) => ({
    store,
    manifest: manifestItem(ctx),
    output: stringParam(ctx, 'output'),
    runId: ctx.runId,
    duckdb,
    ...temporal(),
  });
  const buildArgs = (ctx: TaskContext) => ({
    store,
    output: stringParam(ctx, 'output'),
    runId: ctx.runId,
    duckdb,
    ...temporal(),
  });
  return {
    sparkifyWaitForLogs: userErrors(async (ctx) =>
      ctx.params.waitForLogs === false
        ? json({ done: true, detail: 'not waiting (waitForLogs=false): the run reads the log files there are' })
        : json(await checkLogsArrived({ store, input: stringParam(ctx, 'input'), dataInterval: ctx.dataInterval })),
    ),

    sparkifyListInputs: userErrors(async (ctx) => {
      // This worker's files of an earlier execution of the run must not be taken for this one's.
      await runCache(duckdb, ctx.runId).drop();
      return json(
        await listInputs({
          store,
          input: stringParam(ctx, 'input'),
          output: stringParam(ctx, 'output'),
          runId: ctx.runId,
          dataInterval: ctx.dataInterval,
          rebuildSongs: ctx.params.rebuildSongs === true,
        }),
      );
    }),

    sparkifyStageSongs: userErrors(async (ctx) => json(await stageSongs(stageArgs(ctx)))),
    sparkifyStageLogs: userErrors(async (ctx) => json(await stageLogs(stageArgs(ctx)))),

    // The build in three tasks, so several workers share it (build-partitioned.ts).
    sparkifyBuildSongs: userErrors(async (ctx) => {
      const results = stageResults(ctx);
      const verdict = assessRejects(results, maxRejectRate(ctx));
      if (!verdict.passed) throw new NonRetryableTaskError(verdict.message, 'RejectRateError');
      const songs = await buildSongs({ ...buildArgs(ctx), stageResults: results });
      return json({ ...songs, stageTotals: totals(results), rejects: verdict });
    }),

    sparkifyBuildPlays: userErrors(async (ctx) =>
      json(await buildPlayMonth({ ...buildArgs(ctx), month: playMonthItem(ctx) })),
    ),

    sparkifyBuildTables: userErrors(async (ctx) => {
      const songs = upstreamOf<BuildSongsResult & { stageTotals: StageTotals[]; rejects: Json }>(ctx, 'months');
      const months = Object.values(ctx.upstream)
        .flatMap((v) => (Array.isArray(v) ? v : []))
        .filter((m): m is BuildMonthResult & Json => typeof m === 'object' && m !== null && 'month' in m);
      const built: BuildTablesResult = await finishBuild({ ...buildArgs(ctx), songs, months });
      // validate and publish prefer this worker: its run cache holds users, every month's user_days and more.
      return json({ ...built, stageTotals: songs.stageTotals, rejects: songs.rejects, ...ownQueue(ctx) });
    }),

    sparkifyValidate: userErrors(async (ctx) => {
      const built = Object.values(ctx.upstream).find(
        (v): v is { stageTotals: StageTotals[] } & Record<string, Json> =>
          typeof v === 'object' && v !== null && !Array.isArray(v) && Array.isArray(v.stageTotals),
      );
      const result = await validate({
        store,
        output: stringParam(ctx, 'output'),
        runId: ctx.runId,
        stageResults: built?.stageTotals,
        maxRejectRate: maxRejectRate(ctx),
        duckdb,
        ...temporal(),
      });
      if (!result.passed) {
        const failed = result.checks.filter((c) => !c.passed).map((c) => `${c.name} (${c.detail})`);
        throw new NonRetryableTaskError(
          `quality checks failed: ${failed.join('; ')}; see ${result.report}`,
          'QualityCheckFailed',
        );
      }
      // publish prefers this worker: validate mirrored every staged table into its run cache.
      return json({ ...result, ...ownQueue(ctx) });
    }),

    sparkifyPublish: userErrors(async (ctx) =>
      json(
        await publish({
          store,
          output: stringParam(ctx, 'output'),
          runId: ctx.runId,
          dataInterval: ctx.dataInterval,
          duckdb,
          lease: deps.lakeLease,
          ...temporal(),
        }),
      ),
    ),
  } satisfies Record<string, TaskActivity>;
}

function manifestItem(ctx: TaskContext): string {
  if (typeof ctx.item !== 'string') {
    throw new NonRetryableTaskError(
      `task '${ctx.taskId}' must be mapped over manifest URIs (got ${JSON.stringify(ctx.item)})`,
      'BadItem',
    );
  }
  return ctx.item;
}

function playMonthItem(ctx: TaskContext): PlayMonth {
  const item = ctx.item as Partial<PlayMonth> | null;
  const valid =
    typeof item?.year === 'number' &&
    typeof item.month === 'number' &&
    Array.isArray(item.parts) &&
    typeof item.songLookup === 'string';
  if (!valid) {
    throw new NonRetryableTaskError(
      `task '${ctx.taskId}' must be mapped over play months { year, month, parts, songLookup } (got ${JSON.stringify(ctx.item)})`,
      'BadItem',
    );
  }
  return item as PlayMonth;
}

/** The one upstream output with `field` (e.g. build_songs' `months`). */
function upstreamOf<T>(ctx: TaskContext, field: string): T {
  const found = Object.values(ctx.upstream).find(
    (v) => typeof v === 'object' && v !== null && !Array.isArray(v) && field in v,
  );
  if (!found) {
    throw new NonRetryableTaskError(`task '${ctx.taskId}' needs an upstream output with '${field}'`, 'BadUpstream');
  }
  return found as T;
}

/** This worker's own task queue, as a hint for downstream tasks (`preferWorkerOf`); nothing when it has none. */
function ownQueue(ctx: TaskContext): { workerQueue?: string } {
  return ctx.workerQueue ? { workerQueue: ctx.workerQueue } : {};
}
