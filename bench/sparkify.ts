/**
 * `npm run bench`: sparkify_etl on Temporal, with the worker in its own process, S3 in and out (the local S3
 * server) and local folders in and out, side by side with its floors: the same transformations in one plain
 * DuckDB process on local files, and the S3 request floor (every input object read once, every table file written
 * once, no compute) sent through S3Client and through the lean request path. Ends with each issue-10 target as
 * PASS or MISS (bench/targets.ts); results go to bench/results/<scale>.json.
 *   npm run bench -- --scale small|medium|target|large      or   --songs N --events M [--days D]
 *   --io s3,local (default both)      --work-dir /dev/shm (input, lakes, S3 data and scratch on one file system)
 * A `--scale large` run measures the target scale first, on the same servers and worker: items 3 and 4 compare
 * the two runs of one bench, not a result stored by another hour.
 */
import type { ChildProcess } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import { Client, Connection } from '@temporalio/client';
import Table from 'cli-table3';
import { Command, InvalidArgumentError } from 'commander';
import { MODEL_SQL, limitPartitionBuffers } from '../activities/sparkify/build-tables';
import { orderByList, selectList, tableSpec } from '../activities/sparkify/catalog';
import { literalGlob, sqlString } from '../activities/sparkify/duckdb';
import { generateSparkify } from '../activities/sparkify/generate';
import { TABLES } from '../activities/sparkify/paths';
import { EVENT_COLUMNS, SONG_COLUMNS } from '../activities/sparkify/schema';
import type { ColumnSpec } from '../activities/sparkify/schema';
import { mapLimit } from '../storage/concurrency';
import { createS3Client } from '../storage/s3-client';
import { createStore } from '../storage/store';
import { triggerDagRun, waitForRun } from '../client/runs';
import { getDag } from '../dags';
import { startDevServer } from '../services/dev-server';
import { s3EnvFor, startS3Server } from '../services/s3-server';
import { check, formatTargets, notMeasured, verdict, type TargetLine } from './targets';
import { frameworkBenchMain, frameworkTargets } from './framework';
import { startBenchWorkers } from './workers';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
const root = join(import.meta.dirname, '..');
/**
 * [song files, events, days of logs]. The large lake is the target's days grown ten times over (300 days, ten
 * months), as a lake grows with its daily runs: each day holds as many events as at the target scale, so the
 * daily run of item 4 compares the same day's work on a lake ten times larger.
 */
const SCALES = {
  small: [1_000, 50_000, 30],
  medium: [5_000, 250_000, 30],
  target: [20_000, 1_000_000, 30],
  large: [100_000, 10_000_000, 300],
} as const;
/** One scale a bench run measures: its name (in paths and run ids) and the generator's shape. */
interface ScaleShape {
  name: string;
  songs: number;
  events: number;
  days: number;
}
/** Issue 10's limits. */
const LIMITS = {
  localToFloor: 1.2,
  s3ToRequestFloor: 1.3,
  largeRssMB: 2048,
  largeWallToTarget: 10,
  largeDailyToTarget: 2,
};
/** Requests in flight for the request floor (as publish's copies). */
const FLOOR_CONCURRENCY = 32;

// `--framework`: only the framework overhead bench (bench/framework.ts), no Sparkify data.
if (process.argv.includes('--framework')) {
  await frameworkBenchMain(process.argv);
  process.exit(0);
}

const count = (v: string) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n <= 0) throw new InvalidArgumentError('must be a positive whole number');
  return n;
};
const opts = new Command('bench')
  .option('--scale <name>', `preset: ${Object.keys(SCALES).join(', ')}`, 'small')
  .option('--songs <n>', 'song files (overrides --scale)', count)
  .option('--events <n>', 'events (overrides --scale)', count)
  .option('--days <n>', "daily log files (default: the scale's, 30 or 300 for large)", count)
  .option('--floor-runs <n>', 'runs of the DuckDB floor; the best counts (default 3, 1 for large)', count)
  .option('--memory-limit <size>', "the worker's DuckDB memory_limit", '1GB')
  .option(
    '--work-dir <dir>',
    "one file system for the input, the floor's lake, the S3 server's data and the worker's scratch",
    tmpdir(),
  )
  .option('--keep-input <dir>', 'generate the input into <dir> once and reuse it on later runs with the same scale')
  .option(
    '--target-input <dir>',
    'for --scale large: keep the input of the target-scale run it measures first in <dir> (as --keep-input)',
  )
  .option('--io <modes>', 'runs to make: s3, local or both (comma-separated)', 's3,local')
  .option('--workers <n>', 'worker processes, each with its own scratch folder (bench/workers.ts)', count, 1)
  .parse()
  .opts<{
    scale: string;
    songs?: number;
    events?: number;
    days?: number;
    floorRuns?: number;
    memoryLimit: string;
    workDir: string;
    keepInput?: string;
    targetInput?: string;
    io: string;
    workers: number;
  }>();
const io = new Set(opts.io.split(',').map((m) => m.trim()));
for (const m of io) if (m !== 's3' && m !== 'local') throw new Error(`unknown --io mode '${m}' (s3, local)`);
const preset = SCALES[opts.scale as keyof typeof SCALES];
if (!preset && !(opts.songs && opts.events)) throw new Error(`unknown --scale '${opts.scale}'`);
const songs = opts.songs ?? preset[0];
const events = opts.events ?? preset[1];
const days = opts.days ?? preset?.[2] ?? 30;
const name = opts.songs || opts.events ? `${songs}-songs-${events}-events` : opts.scale;
const FLOOR_RUNS = opts.floorRuns ?? (opts.scale === 'large' ? 1 : 3);

const log = (line: string) => console.error(`[bench] ${line}`);
const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
const dirBytes = (dir: string): number =>
  readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .reduce((sum, e) => sum + statSync(join(e.parentPath, e.name)).size, 0);

mkdirSync(opts.workDir, { recursive: true }); // `--work-dir /dev/shm/bench` need not exist yet
const work = mkdtempSync(join(opts.workDir, 'tempoflow-bench-'));
const cleanups: (() => Promise<void> | void)[] = [() => rmSync(work, { recursive: true, force: true })];
try {
  // tempoflow: Temporal dev server, S3 server, worker processes, shared by every scale this bench measures.
  const [temporal, s3] = await Promise.all([
    startDevServer({ headless: true }),
    startS3Server({ buckets: ['bench'], dataDir: join(work, 's3', 'objects') }),
  ]);
  cleanups.push(
    () => temporal.stop(),
    () => s3.stop(),
  );
  const s3Env = s3EnvFor(s3);
  const s3Client = createS3Client({ env: s3Env });
  cleanups.push(() => s3Client.destroy());
  const taskQueue = `bench-${Date.now()}`;
  const workers = await startBenchWorkers(opts.workers, {
    address: temporal.address,
    taskQueue,
    env: {
      ...s3Env,
      TEMPOFLOW_DUCKDB_MEMORY_LIMIT: opts.memoryLimit,
      TEMPOFLOW_DUCKDB_TEMP_DIR: join(work, 'spill'),
    },
    scratch: (i) => join(work, i === 0 ? 'worker' : `worker-${i}`),
  });
  cleanups.push(...workers.processes.map((w) => () => stop(w)));
  /** [time, worker RSS] every 200 ms during a run: its peak, and each task's within its start and end. */
  let rssSamples: [number, number][] = [];
  const sampler = setInterval(() => rssSamples.push([Date.now(), workers.maxRss()]), 200);
  cleanups.push(() => clearInterval(sampler));

  const connection = await Connection.connect({ address: temporal.address });
  cleanups.push(() => connection.close());
  const client = new Client({ connection });

  /**
   * One scale measured whole: its input (generated, or reused from `keepInput`), the DuckDB floor (best of
   * `floorRuns`), then a full run and a daily run in each mode of `--io`, each checked against the floor's rows.
   */
  async function measureScale(scale: ScaleShape, keepInput: string | undefined, floorRuns: number) {
    const input = keepInput ?? join(work, `${scale.name}-input`);
    const shape = { songs: scale.songs, events: scale.events, days: scale.days, seed: 1 };
    const kept = join(input, '.bench-input.json');
    let t = Date.now();
    let expected: Awaited<ReturnType<typeof generateSparkify>>;
    const previous = existsSync(kept)
      ? (JSON.parse(readFileSync(kept, 'utf8')) as { shape: typeof shape; expected: typeof expected })
      : undefined;
    if (previous && JSON.stringify(previous.shape) === JSON.stringify(shape)) {
      expected = previous.expected;
      log(`${scale.name}: reusing the input in ${input}`);
    } else {
      rmSync(input, { recursive: true, force: true });
      log(
        `${scale.name}: generating ${scale.songs.toLocaleString('en-US')} songs and ${scale.events.toLocaleString('en-US')} events over ${scale.days} days`,
      );
      expected = await generateSparkify({ out: input, ...shape });
      if (keepInput) writeFileSync(kept, JSON.stringify({ shape, expected }));
    }
    const inputBytes = dirBytes(input);
    log(`${scale.name}: input ${(inputBytes / 1e6).toFixed(0)} MB, ready in ${seconds(Date.now() - t)}`);

    // The floor: one DuckDB process, local files, the same SQL; the best of several (this machine's timings vary).
    log(`${scale.name}: floor: plain DuckDB on local files, best of ${floorRuns}`);
    const floorLake = join(work, `${scale.name}-floor-lake`);
    let floorRows: Record<string, number> = {};
    let floorMs = Infinity;
    for (let i = 0; i < floorRuns; i++) {
      rmSync(floorLake, { recursive: true, force: true });
      for (const f of ['floor.duckdb', 'floor.duckdb.wal']) rmSync(join(work, f), { force: true });
      t = Date.now();
      floorRows = await floor(input, floorLake);
      floorMs = Math.min(floorMs, Date.now() - t);
    }

    /** One full sparkify_etl run from `runInput` to `output`, checked against the floor's row counts. */
    async function measuredRun(label: string, runInput: string, output: string) {
      log(`${scale.name}: tempoflow: sparkify_etl on Temporal, ${label}`);
      const cpuBefore = { worker: workers.cpuSeconds(), s3: cpuSecondsOf(s3.pid) };
      rssSamples = [[Date.now(), workers.maxRss()]];
      const started = Date.now();
      const run = await triggerDagRun(client, getDag('sparkify_etl'), {
        taskQueue,
        params: { input: runInput, output },
      });
      const status = await waitForRun(run.handle);
      const ms = Date.now() - started;
      const cpu = { worker: workers.cpuSeconds() - cpuBefore.worker, s3Server: cpuSecondsOf(s3.pid) - cpuBefore.s3 };
      if (status.state !== 'success')
        throw new Error(`the ${label} run failed: ${JSON.stringify(status.tasks.filter((x) => x.error))}`);
      const rows = (status.outputs.build_tables as { rows: Record<string, number> }).rows;
      for (const table of TABLES) {
        if (rows[table] !== floorRows[table])
          throw new Error(`${table}: ${label} run ${rows[table]} rows, floor ${floorRows[table]}`);
      }
      if (rows.songplays !== expected.nextSongEvents) throw new Error('songplays differ from the generator');
      const tasks = Object.fromEntries(
        status.tasks.map((x) => [
          x.taskId,
          x.startedAt && x.endedAt ? (Date.parse(x.endedAt) - Date.parse(x.startedAt)) / 1000 : null,
        ]),
      );
      // Tasks that overlap (stage_songs and stage_logs) share their peaks.
      const peakRssMBByTask = Object.fromEntries(
        status.tasks.map((x) => {
          const [from, to] = [Date.parse(x.startedAt ?? ''), Date.parse(x.endedAt ?? '')];
          const inside = rssSamples.filter(([at]) => at >= from && at <= to).map(([, rss]) => rss);
          return [x.taskId, inside.length ? Math.round(Math.max(...inside) / 1024 ** 2) : null];
        }),
      );
      const peakRssMB = Math.round(Math.max(...rssSamples.map(([, rss]) => rss)) / 1024 ** 2);
      return { ms, cpu, rows, peakRssMB, peakRssMBByTask, tasks };
    }

    // The daily loop: one day's interval run on the lake just built (songs unchanged, one partition merged).
    const dailyRun = async (runInput: string, output: string, mode: 's3' | 'local'): Promise<number> => {
      log(`${scale.name}: tempoflow: one daily interval run on that lake`);
      const started = Date.now();
      const day = { start: '2018-11-15T00:00:00.000Z', end: '2018-11-16T00:00:00.000Z' };
      const run = await triggerDagRun(client, getDag('sparkify_etl'), {
        taskQueue,
        params: { input: runInput, output },
        dataInterval: day,
        // Each scale's and mode's daily run under its own id: the default (the DAG and the interval) would
        // return the first.
        runId: `sparkify_etl__daily-${scale.name}-${mode}`,
      });
      if (!run.created) throw new Error(`the daily run was not started: run ${run.runId} existed`);
      const daily = await waitForRun(run.handle);
      if (daily.state !== 'success') throw new Error(`the daily run failed: ${JSON.stringify(daily.tasks)}`);
      if (!(daily.outputs.list_inputs as { songsReusedFrom?: string }).songsReusedFrom)
        throw new Error('the daily run rebuilt songs');
      return Date.now() - started;
    };

    const s3Input = `s3://bench/${scale.name}/input`;
    const s3Lake = `s3://bench/${scale.name}/lake`;
    if (io.has('s3')) {
      log(`${scale.name}: uploading the input to the S3 server`);
      await createStore({ s3Client }).uploadDir(input, s3Input);
    }
    const s3Run = io.has('s3') ? await measuredRun('S3 in and out', s3Input, s3Lake) : undefined;
    const s3DailyMs = s3Run ? await dailyRun(s3Input, s3Lake, 's3') : undefined;
    const localLake = join(work, `${scale.name}-lake`);
    const localRun = io.has('local') ? await measuredRun('local folders in and out', input, localLake) : undefined;
    const localDailyMs = localRun ? await dailyRun(input, localLake, 'local') : undefined;
    return { input, inputBytes, floorLake, floorMs, s3Input, s3Run, s3DailyMs, localRun, localDailyMs };
  }

  // Warm-up: one small unmeasured run, so that the first measured run finds the worker's code loaded and compiled
  // (DuckDB, the SDK, the workflow bundle), as a long-lived worker's is.
  log('warm-up: a small unmeasured run');
  const warmUpInput = join(work, 'warm-up-input');
  await generateSparkify({ out: warmUpInput, songs: 200, events: 5_000, days: 2, seed: 2 });
  const warmUp = await triggerDagRun(client, getDag('sparkify_etl'), {
    taskQueue,
    params: { input: warmUpInput, output: join(work, 'warm-up-lake') },
  });
  if ((await waitForRun(warmUp.handle)).state !== 'success') throw new Error('the warm-up run failed');

  // A large run first measures the target scale on the same servers and worker, so that items 3 and 4 compare
  // two runs of one bench (this machine's speed drifts between hours), then the large scale itself.
  const large = opts.scale === 'large' && !opts.songs && !opts.events;
  let baseline: Awaited<ReturnType<typeof measureScale>> | undefined;
  if (large) {
    const [songs, events, days] = SCALES.target;
    baseline = await measureScale({ name: 'target', songs, events, days }, opts.targetInput, 3);
    rmSync(join(work, 'target-lake'), { recursive: true, force: true });
  }
  const main = await measureScale({ name, songs, events, days }, opts.keepInput, FLOOR_RUNS);
  const { input, inputBytes, floorLake, floorMs, s3Run, s3DailyMs, localRun, localDailyMs } = main;

  // The S3 request floor: the requests any pipeline with this input and this layout must make (each input object
  // read once, each table file written once), with no compute at all, through each transport.
  const lakeFiles = readdirSync(floorLake, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => join(e.parentPath, e.name));
  const requestFloor = async (transport: 'S3Client' | 'lean') => {
    log(`S3 request floor through ${transport}: read every input object, write every file of the floor lake`);
    const store = createStore({ s3Client, leanRequests: transport === 'lean' });
    const before = { client: process.cpuUsage(), s3: cpuSecondsOf(s3.pid) };
    const started = Date.now();
    await mapLimit(await store.list(main.s3Input), FLOOR_CONCURRENCY, (o) => store.read(o.uri));
    await mapLimit(lakeFiles, FLOOR_CONCURRENCY, (file) =>
      store.write(`s3://bench/request-floor-${transport}/${relative(floorLake, file)}`, { file }),
    );
    const ms = Date.now() - started;
    const clientCpu = process.cpuUsage(before.client);
    return {
      ms,
      cpu: { client: (clientCpu.user + clientCpu.system) / 1e6, s3Server: cpuSecondsOf(s3.pid) - before.s3 },
    };
  };
  const floors = io.has('s3')
    ? { s3Client: await requestFloor('S3Client'), lean: await requestFloor('lean') }
    : undefined;

  const result = {
    scale: name,
    songs,
    events,
    days,
    inputMB: +(inputBytes / 1e6).toFixed(1),
    rows: s3Run?.rows ?? localRun?.rows,
    floorSeconds: +(floorMs / 1000).toFixed(2),
    s3: s3Run && {
      seconds: +(s3Run.ms / 1000).toFixed(2),
      ratioToFloor: +(s3Run.ms / floorMs).toFixed(2),
      ratioToRequestFloor: floors && +(s3Run.ms / floors.lean.ms).toFixed(2),
      dailyRunSeconds: s3DailyMs && +(s3DailyMs / 1000).toFixed(2),
      /** CPU seconds (user + system) of the worker and the S3 server during the run. */
      cpuSeconds: round(s3Run.cpu),
      peakWorkerRssMB: s3Run.peakRssMB,
      peakWorkerRssMBByTask: s3Run.peakRssMBByTask,
      eventsPerSecond: Math.round(events / (s3Run.ms / 1000)),
      tasks: s3Run.tasks,
    },
    local: localRun && {
      seconds: +(localRun.ms / 1000).toFixed(2),
      ratioToFloor: +(localRun.ms / floorMs).toFixed(2),
      dailyRunSeconds: localDailyMs && +(localDailyMs / 1000).toFixed(2),
      cpuSeconds: { worker: +localRun.cpu.worker.toFixed(1) },
      peakWorkerRssMB: localRun.peakRssMB,
      peakWorkerRssMBByTask: localRun.peakRssMBByTask,
      tasks: localRun.tasks,
    },
    /** The S3 request floor through each transport: seconds, and CPU seconds of this client and the S3 server. */
    requestFloor: floors && {
      requests: { inputObjects: fileCount(input), tableFiles: lakeFiles.length },
      concurrency: FLOOR_CONCURRENCY,
      s3Client: { seconds: +(floors.s3Client.ms / 1000).toFixed(2), cpuSeconds: round(floors.s3Client.cpu) },
      lean: { seconds: +(floors.lean.ms / 1000).toFixed(2), cpuSeconds: round(floors.lean.cpu) },
    },
    /** A large run's target-scale run, measured first in the same bench (items 3 and 4 compare with it). */
    baseline: baseline && {
      scale: 'target',
      floorSeconds: +(baseline.floorMs / 1000).toFixed(2),
      s3: baseline.s3Run && baselineRun(baseline.s3Run, baseline.s3DailyMs, baseline.floorMs),
      local: baseline.localRun && baselineRun(baseline.localRun, baseline.localDailyMs, baseline.floorMs),
    },
    workDir: opts.workDir,
    targets: [] as (TargetLine & { verdict: string })[],
  };

  // The targets. A large run is judged against the target-scale run it measured first.
  const x = (a: number, b: number) => `${seconds(a)} = ${(a / b).toFixed(2)} × ${seconds(b)}`;
  const lines: TargetLine[] = [];
  lines.push(
    localRun
      ? check(
          '1 local: wall ≤ 1.2 × DuckDB floor',
          localRun.ms / floorMs,
          LIMITS.localToFloor,
          x(localRun.ms, floorMs),
          '≤ 1.2 ×',
        )
      : notMeasured('1 local: wall ≤ 1.2 × DuckDB floor', 'not run (--io without local)', '≤ 1.2 ×'),
    s3Run && floors
      ? check(
          '2 S3: wall ≤ 1.3 × lean request floor',
          s3Run.ms / floors.lean.ms,
          LIMITS.s3ToRequestFloor,
          x(s3Run.ms, floors.lean.ms),
          '≤ 1.3 ×',
        )
      : notMeasured('2 S3: wall ≤ 1.3 × lean request floor', 'not run (--io without s3)', '≤ 1.3 ×'),
  );
  // A large run is compared with the target scale's run of the same mode: S3 when it ran S3, else local folders.
  const mode = s3Run ? 's3' : 'local';
  const mainRun = s3Run ?? localRun;
  const mainDailyMs = s3DailyMs ?? localDailyMs;
  const baseRun = mode === 's3' ? baseline?.s3Run : baseline?.localRun;
  const baseDailyMs = mode === 's3' ? baseline?.s3DailyMs : baseline?.localDailyMs;
  const largeOnly = (target: string, limit: string, measure: () => TargetLine | undefined): TargetLine =>
    !large
      ? notMeasured(target, 'needs --scale large', limit)
      : (measure() ?? notMeasured(target, `the target-scale ${mode} run measured no result`, limit));
  const peakMB = Math.max(s3Run?.peakRssMB ?? 0, localRun?.peakRssMB ?? 0);
  lines.push(
    largeOnly('3 large: worker peak RSS ≤ 2 GB', '≤ 2048 MB', () =>
      check('3 large: worker peak RSS ≤ 2 GB', peakMB, LIMITS.largeRssMB, `${peakMB} MB`, '≤ 2048 MB'),
    ),
    largeOnly('3 large: wall ≤ 10 × target scale', '≤ 10 ×', () => {
      if (!mainRun || !baseRun) return undefined;
      return check(
        '3 large: wall ≤ 10 × target scale',
        mainRun.ms / baseRun.ms,
        LIMITS.largeWallToTarget,
        x(mainRun.ms, baseRun.ms),
        '≤ 10 ×',
      );
    }),
    largeOnly("3 large: ratio to floor ≤ target scale's", "≤ target's", () => {
      if (!mainRun || !baseRun || !baseline) return undefined;
      const base = +(baseRun.ms / baseline.floorMs).toFixed(2);
      const ratio = mainRun.ms / floorMs;
      return check(
        "3 large: ratio to floor ≤ target scale's",
        ratio,
        base,
        `${ratio.toFixed(2)} vs ${base}`,
        `≤ ${base}`,
      );
    }),
    largeOnly('4 daily run on large lake ≤ 2 × on target lake', '≤ 2 ×', () => {
      if (!mainDailyMs || !baseDailyMs) return undefined;
      return check(
        '4 daily run on large lake ≤ 2 × on target lake',
        mainDailyMs / baseDailyMs,
        LIMITS.largeDailyToTarget,
        x(mainDailyMs, baseDailyMs),
        '≤ 2 ×',
      );
    }),
  );
  // Hook for the other bench modes (issue 10 items 5 and 6: --workers, --framework): append their TargetLines
  // here, e.g. `lines.push(...(await frameworkTargets(...)))` from bench/framework.ts; they print and are saved
  // with the rest.
  log('framework overhead: a 5,000-way map and a 100-task chain of no-op tasks (bench/framework.ts)');
  lines.push(...(await frameworkTargets({ log: (line) => log(`framework: ${line}`) })).lines);
  result.targets = lines.map((l) => ({ ...l, verdict: verdict(l) }));

  mkdirSync(join(root, 'bench', 'results'), { recursive: true });
  writeFileSync(join(root, 'bench', 'results', `${name}.json`), JSON.stringify(result, null, 2) + '\n');

  const table = new Table({ head: ['', 'wall', 'ratio', 'CPU seconds', 'peak worker RSS'] });
  table.push(['DuckDB floor (one process, local)', seconds(floorMs), '1.00', '', '']);
  if (localRun) {
    table.push([
      'tempoflow, local folders',
      seconds(localRun.ms),
      `${(localRun.ms / floorMs).toFixed(2)} × floor`,
      `worker ${localRun.cpu.worker.toFixed(0)}`,
      `${localRun.peakRssMB} MB`,
    ]);
    if (localDailyMs) table.push(['  one daily run after it', seconds(localDailyMs), '', '', '']);
  }
  if (s3Run && floors) {
    table.push(
      [
        'tempoflow, S3 in and out',
        seconds(s3Run.ms),
        `${(s3Run.ms / floors.lean.ms).toFixed(2)} × request floor, ${(s3Run.ms / floorMs).toFixed(2)} × floor`,
        `worker ${s3Run.cpu.worker.toFixed(0)}, S3 server ${s3Run.cpu.s3Server.toFixed(0)}`,
        `${s3Run.peakRssMB} MB`,
      ],
      ['  one daily run after it', seconds(s3DailyMs ?? NaN), '', '', ''],
      ...(['s3Client', 'lean'] as const).map((k) => [
        `S3 request floor, ${k === 'lean' ? 'lean path' : 'S3Client'}`,
        seconds(floors[k].ms),
        `${(floors[k].ms / floorMs).toFixed(2)} × floor`,
        `client ${floors[k].cpu.client.toFixed(0)}, S3 server ${floors[k].cpu.s3Server.toFixed(0)}`,
        '',
      ]),
    );
  }
  if (baseline) {
    const run = baseline.s3Run ?? baseline.localRun;
    const dailyMs = baseline.s3DailyMs ?? baseline.localDailyMs;
    table.push([
      `target scale, measured first (${baseline.s3Run ? 'S3' : 'local folders'})`,
      run ? seconds(run.ms) : '',
      run ? `${(run.ms / baseline.floorMs).toFixed(2)} × its floor ${seconds(baseline.floorMs)}` : '',
      '',
      run ? `${run.peakRssMB} MB` : '',
    ]);
    if (dailyMs) table.push(['  one daily run after it', seconds(dailyMs), '', '', '']);
  }
  console.log(
    `\nsparkify_etl, ${name}: ${songs.toLocaleString('en-US')} song files, ${events.toLocaleString('en-US')} events, ${result.inputMB} MB`,
  );
  console.log(table.toString());
  if (s3Run) console.log(`S3 run task seconds: ${JSON.stringify(s3Run.tasks)}`);
  if (localRun) console.log(`local run task seconds: ${JSON.stringify(localRun.tasks)}`);
  for (const [label, run] of [
    ['S3', s3Run],
    ['local', localRun],
  ] as const) {
    if (run)
      console.log(`${label} run peak worker RSS (MB) while each task ran: ${JSON.stringify(run.peakRssMBByTask)}`);
  }
  console.log(`\nissue 10 targets:\n${formatTargets(lines)}`);
} finally {
  for (const fn of cleanups.reverse()) await fn();
}
process.exit(0);

/** A baseline run as the results record it. */
function baselineRun(
  run: { ms: number; peakRssMB: number; tasks: unknown },
  dailyMs: number | undefined,
  floorMs: number,
) {
  return {
    seconds: +(run.ms / 1000).toFixed(2),
    ratioToFloor: +(run.ms / floorMs).toFixed(2),
    dailyRunSeconds: dailyMs && +(dailyMs / 1000).toFixed(2),
    peakWorkerRssMB: run.peakRssMB,
    tasks: run.tasks,
  };
}

function fileCount(dir: string): number {
  return readdirSync(dir, { recursive: true, withFileTypes: true }).filter((e) => e.isFile()).length;
}

/** The same star schema in one DuckDB process reading the local JSON directly. */
async function floor(input: string, out: string): Promise<Record<string, number>> {
  mkdirSync(out, { recursive: true });
  const instance = await DuckDBInstance.create(join(work, 'floor.duckdb'), {
    memory_limit: opts.memoryLimit,
    temp_directory: join(work, 'floor-spill'),
    // Outputs are sorted by their COPY's ORDER BY; keeping read order for thousands of files costs memory.
    preserve_insertion_order: 'false',
  });
  const conn = await instance.connect();
  try {
    const columns = (specs: readonly ColumnSpec[]) => `{${specs.map((c) => `'${c.name}': '${c.type}'`).join(', ')}}`;
    await conn.run(
      `CREATE TABLE staged_songs AS SELECT * FROM read_json(${sqlString(`${literalGlob(input)}/song_data/**/*.json`)}, columns = ${columns(SONG_COLUMNS)}, format = 'auto')`,
    );
    await conn.run(
      `CREATE TABLE staged_events AS SELECT * FROM read_json(${sqlString(`${literalGlob(input)}/log_data/**/*.json`)}, columns = ${columns(EVENT_COLUMNS)}, format = 'newline_delimited')`,
    );
    await conn.run(MODEL_SQL);
    await limitPartitionBuffers(conn, { memoryLimit: opts.memoryLimit }); // as build_tables and publish do
    const rows: Record<string, number> = {};
    for (const t of TABLES) {
      const partitionBy = tableSpec(t).partitionBy;
      const partition = partitionBy.length ? `, PARTITION_BY (${partitionBy.join(', ')})` : '';
      await conn.run(
        `COPY (SELECT ${selectList(t)} FROM "${t}" ORDER BY ${orderByList(t)}) TO ${sqlString(`${out}/${t}`)} (FORMAT parquet${partition})`,
      );
      const r = await conn.runAndReadAll(`SELECT count(*)::INTEGER AS n FROM "${t}"`);
      rows[t] = Number(r.getRowObjects()[0]!.n);
    }
    return rows;
  } finally {
    conn.closeSync();
    instance.closeSync();
  }
}

/** CPU seconds (user + system) a process has used so far, from /proc (clock ticks of 1/100 s). */
function cpuSecondsOf(pid: number | undefined): number {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return NaN;
  }
}

function round(values: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(values).map(([k, v]) => [k, +v.toFixed(1)]));
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  await exited;
}
