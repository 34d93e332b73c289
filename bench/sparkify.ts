/**
 * `npm run bench`: sparkify_etl on Temporal against the local S3 server, with the worker in its own process,
 * against the floor: the same transformations in one plain DuckDB process on local files.
 *   npm run bench -- --scale small|medium|target      or   --songs N --events M [--days D]
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
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
import { mapLimit } from '../activities/storage/concurrency';
import { createS3Client } from '../activities/storage/s3-client';
import { createStore } from '../activities/storage/store';
import { triggerDagRun, waitForRun } from '../client/runs';
import { getDag } from '../dags';
import { startDevServer } from '../services/dev-server';
import { s3EnvFor, startS3Server } from '../services/s3-server';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
const root = join(import.meta.dirname, '..');
const SCALES = { small: [1_000, 50_000], medium: [5_000, 250_000], target: [20_000, 1_000_000] } as const;
const TARGET_RATIO = 1.5;
const TARGET_RSS = 1.5 * 1024 ** 3;
const FLOOR_RUNS = 3;

const count = (v: string) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n <= 0) throw new InvalidArgumentError('must be a positive whole number');
  return n;
};
const opts = new Command('bench')
  .option('--scale <name>', `preset: ${Object.keys(SCALES).join(', ')}`, 'small')
  .option('--songs <n>', 'song files (overrides --scale)', count)
  .option('--events <n>', 'events (overrides --scale)', count)
  .option('--days <n>', 'daily log files', count, 30)
  .option('--memory-limit <size>', "the worker's DuckDB memory_limit", '1GB')
  .option(
    '--work-dir <dir>',
    "one file system for the input, the floor's lake, the S3 server's data and the worker's scratch",
    tmpdir(),
  )
  .parse()
  .opts<{ scale: string; songs?: number; events?: number; days: number; memoryLimit: string; workDir: string }>();
const preset = SCALES[opts.scale as keyof typeof SCALES];
if (!preset && !(opts.songs && opts.events)) throw new Error(`unknown --scale '${opts.scale}'`);
const songs = opts.songs ?? preset[0];
const events = opts.events ?? preset[1];
const name = opts.songs || opts.events ? `${songs}-songs-${events}-events` : opts.scale;

const log = (line: string) => console.error(`[bench] ${line}`);
const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
const dirBytes = (dir: string): number =>
  readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .reduce((sum, e) => sum + statSync(join(e.parentPath, e.name)).size, 0);

const work = mkdtempSync(join(opts.workDir, 'tempoflow-bench-'));
const cleanups: (() => Promise<void> | void)[] = [() => rmSync(work, { recursive: true, force: true })];
try {
  const input = join(work, 'input');
  log(
    `generating ${songs.toLocaleString('en-US')} songs and ${events.toLocaleString('en-US')} events over ${opts.days} days`,
  );
  let t = Date.now();
  const expected = await generateSparkify({ out: input, songs, events, days: opts.days, seed: 1 });
  const inputBytes = dirBytes(input);
  log(`generated ${(inputBytes / 1e6).toFixed(0)} MB in ${seconds(Date.now() - t)}`);

  // The floor: one DuckDB process, local files, the same SQL.
  log(`floor: plain DuckDB on local files, best of ${FLOOR_RUNS}`);
  // The best of three: this machine's timings vary, and the fastest run is the floor.
  const floorLake = join(work, 'floor-lake');
  let floorRows: Record<string, number> = {};
  let floorMs = Infinity;
  for (let i = 0; i < FLOOR_RUNS; i++) {
    rmSync(floorLake, { recursive: true, force: true });
    for (const f of ['floor.duckdb', 'floor.duckdb.wal']) rmSync(join(work, f), { force: true });
    t = Date.now();
    floorRows = await floor(input, floorLake);
    floorMs = Math.min(floorMs, Date.now() - t);
  }

  // tempoflow: Temporal dev server, S3 server, a worker process.
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
  log('uploading the input to the S3 server');
  await createStore({ s3Client }).uploadDir(input, 's3://bench/input');
  const taskQueue = `bench-${Date.now()}`;
  mkdirSync(join(work, 'worker'), { recursive: true });
  const worker = await startWorkerProcess(temporal.address, taskQueue, {
    ...s3Env,
    TEMPOFLOW_DUCKDB_MEMORY_LIMIT: opts.memoryLimit,
    TEMPOFLOW_DUCKDB_TEMP_DIR: join(work, 'spill'),
    TMPDIR: join(work, 'worker'),
  });
  cleanups.push(() => stop(worker));
  let peakRss = 0;
  const sampler = setInterval(() => (peakRss = Math.max(peakRss, rssOf(worker.pid!))), 200);
  cleanups.push(() => clearInterval(sampler));

  const connection = await Connection.connect({ address: temporal.address });
  cleanups.push(() => connection.close());
  const client = new Client({ connection });
  log('tempoflow: sparkify_etl on Temporal, S3 in and out');
  const cpuBefore = { worker: cpuSecondsOf(worker.pid), s3: cpuSecondsOf(s3.pid) };
  t = Date.now();
  const run = await triggerDagRun(client, getDag('sparkify_etl'), {
    taskQueue,
    params: { input: 's3://bench/input', output: 's3://bench/lake' },
  });
  const status = await waitForRun(run.handle);
  const dagMs = Date.now() - t;
  const dagCpu = {
    worker: cpuSecondsOf(worker.pid) - cpuBefore.worker,
    s3Server: cpuSecondsOf(s3.pid) - cpuBefore.s3,
  };
  if (status.state !== 'success')
    throw new Error(`the run failed: ${JSON.stringify(status.tasks.filter((x) => x.error))}`);
  const dagRows = (status.outputs.build_tables as { rows: Record<string, number> }).rows;
  for (const table of TABLES) {
    if (dagRows[table] !== floorRows[table])
      throw new Error(`${table}: DAG ${dagRows[table]} rows, floor ${floorRows[table]}`);
  }
  if (dagRows.songplays !== expected.nextSongEvents) throw new Error('songplays differ from the generator');

  // The daily loop: one day's interval run on the lake just built (songs unchanged, one partition merged).
  log('tempoflow: one daily interval run on that lake');
  t = Date.now();
  const day = { start: '2018-11-15T00:00:00.000Z', end: '2018-11-16T00:00:00.000Z' };
  const daily = await waitForRun(
    (
      await triggerDagRun(client, getDag('sparkify_etl'), {
        taskQueue,
        params: { input: 's3://bench/input', output: 's3://bench/lake' },
        dataInterval: day,
      })
    ).handle,
  );
  const dailyMs = Date.now() - t;
  if (daily.state !== 'success') throw new Error(`the daily run failed: ${JSON.stringify(daily.tasks)}`);
  if (!(daily.outputs.list_inputs as { songsReusedFrom?: string }).songsReusedFrom)
    throw new Error('the daily run rebuilt songs');

  // The S3 I/O floor: the requests any pipeline with this input and this layout must make (each input object
  // read once, each table file written once), with no compute at all. The DAG cannot beat it.
  log('S3 I/O floor: read every input object, write every file of the floor lake');
  const ioCpuBefore = { client: process.cpuUsage(), s3: cpuSecondsOf(s3.pid) };
  t = Date.now();
  const store = createStore({ s3Client });
  await mapLimit(await store.list('s3://bench/input'), 32, (o) => store.read(o.uri));
  const lakeFiles = readdirSync(floorLake, { recursive: true, withFileTypes: true }).filter((e) => e.isFile());
  await mapLimit(lakeFiles, 32, (e) => {
    const file = join(e.parentPath, e.name);
    return store.write(`s3://bench/io-floor/${relative(floorLake, file)}`, { file });
  });
  const ioFloorMs = Date.now() - t;
  const clientCpu = process.cpuUsage(ioCpuBefore.client);
  const ioFloorCpu = {
    client: (clientCpu.user + clientCpu.system) / 1e6,
    s3Server: cpuSecondsOf(s3.pid) - ioCpuBefore.s3,
  };

  const ratio = dagMs / floorMs;
  const result = {
    scale: name,
    songs,
    events,
    days: opts.days,
    inputMB: +(inputBytes / 1e6).toFixed(1),
    rows: dagRows,
    dagSeconds: +(dagMs / 1000).toFixed(2),
    floorSeconds: +(floorMs / 1000).toFixed(2),
    dailyRunSeconds: +(dailyMs / 1000).toFixed(2),
    s3IoFloorSeconds: +(ioFloorMs / 1000).toFixed(2),
    s3Requests: { inputObjects: fileCount(input), tableFiles: lakeFiles.length },
    /** CPU seconds (user + system) spent by each process during the DAG run and during the S3 I/O floor. */
    cpuSeconds: { dag: round(dagCpu), s3IoFloor: round(ioFloorCpu) },
    workDir: opts.workDir,
    ratioToFloor: +ratio.toFixed(2),
    eventsPerSecond: Math.round(events / (dagMs / 1000)),
    mbPerSecond: +(inputBytes / 1e6 / (dagMs / 1000)).toFixed(1),
    peakWorkerRssMB: Math.round(peakRss / 1024 ** 2),
    tasks: Object.fromEntries(
      status.tasks.map((x) => [
        x.taskId,
        x.startedAt && x.endedAt ? (Date.parse(x.endedAt) - Date.parse(x.startedAt)) / 1000 : null,
      ]),
    ),
  };
  mkdirSync(join(root, 'bench', 'results'), { recursive: true });
  writeFileSync(join(root, 'bench', 'results', `${name}.json`), JSON.stringify(result, null, 2) + '\n');

  const table = new Table({ head: ['', 'tempoflow (Temporal + S3)', 'floor (DuckDB, local)', 'target'] });
  table.push(
    ['wall time', seconds(dagMs), seconds(floorMs), ''],
    ['one daily run after it', seconds(dailyMs), '', ''],
    [
      'S3 I/O floor (no compute)',
      `${seconds(ioFloorMs)}: ${(ioFloorMs / floorMs).toFixed(2)} × floor`,
      '',
      ioFloorMs / floorMs > TARGET_RATIO ? `alone over ${TARGET_RATIO} × floor` : '',
    ],
    [
      'CPU seconds',
      `worker ${dagCpu.worker.toFixed(0)}, S3 server ${dagCpu.s3Server.toFixed(0)}`,
      '',
      `I/O floor: client ${ioFloorCpu.client.toFixed(0)}, S3 server ${ioFloorCpu.s3Server.toFixed(0)}`,
    ],
    ['ratio to floor', ratio.toFixed(2), '1.00', `≤ ${TARGET_RATIO} ${ratio <= TARGET_RATIO ? 'PASS' : 'MISS'}`],
    [
      'events/s',
      result.eventsPerSecond.toLocaleString('en-US'),
      Math.round(events / (floorMs / 1000)).toLocaleString('en-US'),
      '',
    ],
    ['input MB/s', String(result.mbPerSecond), (inputBytes / 1e6 / (floorMs / 1000)).toFixed(1), ''],
    ['peak worker RSS', `${result.peakWorkerRssMB} MB`, '', `≤ 1536 MB ${peakRss <= TARGET_RSS ? 'PASS' : 'MISS'}`],
  );
  console.log(
    `\nsparkify_etl, ${name}: ${songs.toLocaleString('en-US')} song files, ${events.toLocaleString('en-US')} events, ${result.inputMB} MB`,
  );
  console.log(table.toString());
  console.log(`task seconds: ${JSON.stringify(result.tasks)}`);
} finally {
  for (const fn of cleanups.reverse()) await fn();
}
process.exit(0);

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

function startWorkerProcess(address: string, taskQueue: string, env: Record<string, string>): Promise<ChildProcess> {
  const child = spawn(
    process.execPath,
    [join(root, 'bin/tempoflow.js'), 'worker', '--address', address, '--task-queue', taskQueue],
    {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'ignore', 'pipe'],
    },
  );
  return new Promise((resolve, reject) => {
    child.stderr.on('data', (chunk: Buffer) => {
      if (chunk.toString().includes('tempoflow worker on')) resolve(child);
    });
    child.once('exit', (code) => reject(new Error(`the worker exited with ${code}`)));
  });
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

function rssOf(pid: number): number {
  try {
    const kb = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
    return kb ? Number(kb) * 1024 : 0;
  } catch {
    return 0;
  }
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  await exited;
}
