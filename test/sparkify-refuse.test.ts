/**
 * Refused before any write: a lake that overlaps its input (from the CLI, and on the worker for runs that bypass
 * it), a full run whose input lacks song_data/ or log_data/, and paths with glob characters read literally.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createStore } from '../storage';
import { createSparkifyActivities } from '../activities/sparkify/activities';
import { literalGlob, sqlFileList } from '../activities/sparkify/duckdb';
import { inputOutputProblem, locationOverlap } from '../activities/sparkify/locations';
import {
  InputDataError,
  TABLES,
  generateSparkify,
  prepareSparkifyRun,
  readPublished,
  runSparkifyPipeline,
  type GenerateExpectations,
  type TableName,
} from '../activities/sparkify';
import { waitForRun } from '../client/runs';
import { defineDag } from '../core/dag';
import { ParamValidationError } from '../core/errors';
import { resolveParams } from '../core/params';
import type { DagRunInput } from '../core/types';
import { sparkifyDag } from '../dags/sparkify';
import { DAG_RUN_WORKFLOW } from '../workflows/definitions';
import type { dagRun } from '../workflows';
import { withTestWorker } from './support';
import { testServices } from './services';

const BIN = fileURLToPath(new URL('../bin/tempoflow.js', import.meta.url));
const ROOT = fileURLToPath(new URL('..', import.meta.url));
const store = createStore();
const duckdb = { memoryLimit: '512MB', threads: 1 };
const tmp = (name: string) => fs.mkdtemp(path.join(os.tmpdir(), `tempoflow-refuse-${name}-`));

function cli(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [BIN, ...args],
      { cwd: ROOT, env: { ...process.env, NO_COLOR: '1', ...env }, timeout: 60_000 },
      (error, _stdout, stderr) => {
        resolve({ code: error ? (typeof error.code === 'number' ? error.code : null) : 0, stderr });
      },
    );
  });
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = (server.address() as net.AddressInfo) ?? { port: 0 };
      server.close(() => resolve(port));
    });
  });
}

/** Every file under `dir` (relative path -> sha-256 of its bytes): "unchanged" means byte for byte. */
async function snapshot(dir: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const entries = await fs.readdir(dir, { recursive: true, withFileTypes: true });
  for (const e of entries) {
    if (!e.isFile()) continue;
    const file = path.join(e.parentPath, e.name);
    out.set(
      path.relative(dir, file),
      createHash('sha256')
        .update(await fs.readFile(file))
        .digest('hex'),
    );
  }
  return out;
}

async function lake(output: string): Promise<Record<TableName, Record<string, unknown>[]>> {
  const out = {} as Record<TableName, Record<string, unknown>[]>;
  for (const t of TABLES) out[t] = await readPublished(store, output, t);
  return out;
}

void describe('locations compared canonically', () => {
  void test('equal, inside and containing in any spelling; apart otherwise', async () => {
    const dir = await tmp('loc');
    await fs.mkdir(path.join(dir, 'real'));
    await fs.symlink(path.join(dir, 'real'), path.join(dir, 'link'));
    assert.equal(locationOverlap('s3a://b/in/', 's3://b//in'), 'same');
    assert.equal(locationOverlap('s3://b/in/lake', 's3a://b/in'), 'inside');
    assert.equal(locationOverlap('s3://b', 's3n://b/in'), 'contains');
    assert.equal(locationOverlap('s3://b/in', 's3://b/input'), undefined);
    assert.equal(locationOverlap('s3://b/in', 's3://bb/in'), undefined);
    assert.equal(locationOverlap('s3://b/x', `${dir}/b/x`), undefined);
    assert.equal(locationOverlap(path.relative(process.cwd(), dir), `file://${dir}/`), 'same');
    assert.equal(locationOverlap(`${dir}/link/lake`, `${dir}/real`), 'inside');
    assert.equal(locationOverlap(`${dir}/real/../real2`, `${dir}/real`), undefined);
    assert.match(inputOutputProblem('http://host/x', '/tmp/lake') ?? '', /param 'input': unsupported storage URI/);
    await fs.rm(dir, { recursive: true, force: true });
  });

  void test('a DAG validates its params together before a run starts; the check stays out of the snapshot', () => {
    const dag = defineDag({
      id: 'two_locations',
      params: { a: { type: 'string', default: 'x' }, b: { type: 'string', required: true } },
      validateParams: ({ a, b }) => (a === b ? [`params 'a' and 'b' must differ, both are ${JSON.stringify(a)}`] : []),
      tasks: [{ id: 't', activity: 'act' }],
    });
    assert.equal('validateParams' in dag, false);
    assert.equal(JSON.stringify(dag).includes('validateParams'), false);
    assert.deepEqual(resolveParams(dag, { b: 'y' }), { a: 'x', b: 'y' });
    assert.throws(() => resolveParams(dag, { b: 'x' }), {
      name: 'ParamValidationError',
      message: `DAG 'two_locations': params 'a' and 'b' must differ, both are "x"`,
    });
    // Per-param problems first: the DAG's check sees only params of the right types.
    assert.throws(() => resolveParams(dag, {}), { message: /param 'b' is required/ });
    assert.throws(
      () => defineDag({ id: 'bad', validateParams: 'no' as never, tasks: [{ id: 't', activity: 'act' }] }),
      { name: 'DagDefinitionError', message: /validateParams: must be a function/ },
    );
    assert.throws(
      () => resolveParams(sparkifyDag, { input: 's3a://b/in', output: 's3://b/in/lake' }),
      (err) => {
        assert.ok(err instanceof ParamValidationError);
        assert.match(err.message, /^DAG 'sparkify_etl': param 'output' 's3:\/\/b\/in\/lake' is inside param 'input'/);
        return true;
      },
    );
    assert.doesNotThrow(() => resolveParams(sparkifyDag, { input: 's3://b/in', output: 's3://b/input-lake' }));
  });
});

void describe('the CLI refuses a lake that overlaps its input', () => {
  let dir: string;
  before(async () => {
    dir = await tmp('cli');
    await fs.mkdir(path.join(dir, 'songs'));
  });
  after(() => fs.rm(dir, { recursive: true, force: true }));

  const cases = (d: () => string): [string, string, string, RegExp][] => [
    ['contains', `${d()}/songs`, d(), /param 'output' '.*' contains param 'input' '.*\/songs'/],
    ['inside', d(), `${d()}/lake`, /param 'output' '.*\/lake' is inside param 'input' '[^']*'/],
    [
      's3 spellings',
      's3a://b/in',
      's3://b/in/lake',
      /param 'output' 's3:\/\/b\/in\/lake' is inside param 'input' 's3a:\/\/b\/in' \(s3:\/\/b\/in\)/,
    ],
    [
      'relative vs absolute',
      path.relative(ROOT, path.join(d(), 'songs')),
      `${d()}/songs/`,
      /is the same location as param 'input'/,
    ],
  ];

  void test('trigger (with and without --local) and backfill exit 2 naming both, before anything starts', async () => {
    // A closed port: refused before connecting (and --local starts no server: it needs none to refuse).
    const env = { TEMPORAL_ADDRESS: `127.0.0.1:${await freePort()}` };
    for (const [label, input, output, message] of cases(() => dir)) {
      for (const local of [false, true]) {
        const started = Date.now();
        const args = ['trigger', 'sparkify_etl', '-p', `input=${input}`, '-p', `output=${output}`];
        const { code, stderr } = await cli(local ? [...args, '--local'] : args, env);
        const what = `${label}${local ? ' --local' : ''}: ${stderr}`;
        assert.equal(code, 2, what);
        assert.match(stderr, /DAG 'sparkify_etl': /, what);
        assert.match(stderr, message, what);
        assert.ok(stderr.includes(input) && stderr.includes(output), what);
        assert.doesNotMatch(stderr, /cannot reach|^\s+at .+:\d+:\d+\)?$/m, what);
        assert.ok(Date.now() - started < 30_000, `${what}: refused at once`);
      }
    }
    const backfill = await cli(
      [
        'backfill',
        'sparkify_etl',
        '--from',
        '2018-11-01',
        '--to',
        '2018-11-03',
        '-p',
        `input=${dir}`,
        '-p',
        `output=${dir}`,
      ],
      env,
    );
    assert.equal(backfill.code, 2, backfill.stderr);
    assert.match(backfill.stderr, /param 'output' '[^']*' is the same location as param 'input'/);
    // Nothing was written anywhere under the folders.
    assert.deepEqual((await fs.readdir(dir, { recursive: true })).sort(), ['songs']);
  });
});

void describe('missing song_data/ or log_data/', () => {
  let root: string;
  let full: string;
  let output: string;
  before(async () => {
    root = await tmp('missing');
    full = path.join(root, 'full');
    output = path.join(root, 'lake');
    await generateSparkify({ out: full, songs: 40, events: 900, days: 3, seed: 5 });
    await runSparkifyPipeline({ store, input: full, output, runId: 'good', duckdb });
  });
  after(() => fs.rm(root, { recursive: true, force: true }));

  void test('a full run is refused naming what is missing, and leaves the lake byte for byte', async () => {
    const onlySongs = path.join(root, 'only-songs');
    await store.copyPrefix(path.join(full, 'song_data'), path.join(onlySongs, 'song_data'));
    // Hidden and checkpoint files are not log files.
    await store.write(path.join(onlySongs, 'log_data/_SUCCESS'), '');
    await store.write(path.join(onlySongs, 'log_data/2018/11/.2018-11-01-events.json'), '{}\n');
    const onlyLogs = path.join(root, 'only-logs');
    await store.copyPrefix(path.join(full, 'log_data'), path.join(onlyLogs, 'log_data'));
    const before = await snapshot(output);
    assert.ok(before.size > 5);

    await assert.rejects(runSparkifyPipeline({ store, input: onlySongs, output, runId: 'no-logs', duckdb }), (err) => {
      assert.ok(err instanceof InputDataError);
      assert.match(err.message, /^input .*only-songs has no log_data\/: no \.json file under .*only-songs\/log_data\//);
      return true;
    });
    await assert.rejects(runSparkifyPipeline({ store, input: onlyLogs, output, runId: 'no-songs', duckdb }), (err) => {
      assert.ok(err instanceof InputDataError);
      assert.match(err.message, /^input .*only-logs has no song_data\/: no \.json file under .*only-logs\/song_data\//);
      return true;
    });
    // With an interval too: every run reads all songs.
    const day = { start: '2018-11-01T00:00:00Z', end: '2018-11-02T00:00:00Z' };
    await assert.rejects(
      runSparkifyPipeline({ store, input: onlyLogs, output, runId: 'no-songs-day', dataInterval: day, duckdb }),
      /has no song_data\//,
    );
    await assert.rejects(
      runSparkifyPipeline({ store, input: path.join(root, 'nothing'), output, runId: 'none', duckdb }),
      /^InputDataError: no input files: no \.json file under .*nothing\/song_data\/ or .*nothing\/log_data\//,
    );
    assert.deepEqual(await snapshot(output), before);
  });

  void test('an interval run with no log file in its interval succeeds and adds nothing', async () => {
    const published = await lake(output);
    const run = await runSparkifyPipeline({
      store,
      input: full,
      output,
      runId: 'empty-day',
      dataInterval: { start: '2019-01-01T00:00:00Z', end: '2019-01-02T00:00:00Z' },
      duckdb,
    });
    assert.equal(run.list.logFiles, 0);
    assert.deepEqual(await lake(output), published);
  });
});

const { temporal } = await testServices();
const noTemporal = (await new Promise<boolean>((resolve) => {
  const [host, port] = temporal.address.split(':');
  const s = net.connect(Number(port), host ?? '127.0.0.1', () => (s.end(), resolve(true)));
  s.on('error', () => resolve(false));
}))
  ? false
  : `no Temporal server at ${temporal.address}: skipped`;

void describe('the worker refuses what a client did not check', { skip: noTemporal }, () => {
  void test('a run started without the client check fails at list_inputs, once, naming both; nothing written', async () => {
    const root = await tmp('worker');
    const input = path.join(root, 'songs');
    await generateSparkify({ out: input, songs: 10, events: 100, days: 1, seed: 2 });
    const before = await snapshot(root);
    const activities = createSparkifyActivities({ store, duckdb });
    await withTestWorker({ dags: [sparkifyDag], activities }, async ({ client, taskQueue }) => {
      // As a schedule or backfill started before the check existed would: the workflow input as is.
      const runInput: DagRunInput = {
        dag: sparkifyDag,
        params: { input, output: root, maxRejectRate: 0.01, rebuildSongs: false },
        logicalDate: '2018-11-02T00:00:00.000Z',
        dataInterval: null,
      };
      const handle = await client.workflow.start<typeof dagRun>(DAG_RUN_WORKFLOW, {
        workflowId: `refuse-${path.basename(root)}`,
        taskQueue,
        args: [runInput],
      });
      const status = await waitForRun(handle);
      assert.equal(status.state, 'failed');
      const list = status.tasks.find((t) => t.taskId === 'list_inputs');
      assert.equal(list?.state, 'failed');
      assert.equal(list?.attempts, 1, 'not retried');
      assert.equal(list?.error?.type, 'InputDataError');
      assert.equal(list?.error?.message, inputOutputProblem(input, root));
      assert.match(list?.error?.message ?? '', /param 'output' '.*' contains param 'input' '.*\/songs'/);
    });
    assert.deepEqual(await snapshot(root), before);
    await fs.rm(root, { recursive: true, force: true });
  });
});

void describe('paths with glob characters are read literally', () => {
  void test('DuckDB reads the file named, never one a pattern matches', async () => {
    assert.equal(literalGlob('/data/lake[1]/a*b?.parquet'), '/data/lake[[]1]/a[*]b[?].parquet');
    assert.equal(literalGlob('/data/a\\b/{x}.parquet'), '/data/a\\b/{x}.parquet');
    assert.throws(() => literalGlob('/data/a\\b/lake[1]'), {
      name: 'InputDataError',
      message: /'\/data\/a\\b\/lake\[1\]'/,
    });
    assert.equal(sqlFileList(["/a/it's[1]"]), "['/a/it''s[[]1]']");
  });

  void test('a lake, input and work folder named with [1] and * beside decoys a glob would match', async () => {
    const root = await tmp('glob');
    const input = path.join(root, 'in[1]*');
    const output = path.join(root, 'lake[1]*');
    const work = path.join(root, 'work[1]*');
    const exp: GenerateExpectations = await generateSparkify({ out: input, songs: 30, events: 700, days: 3, seed: 11 });
    // Decoys: what `in[1]*` and `lake[1]*` match as patterns, holding other data, with the same run's staging.
    const decoyInput = path.join(root, 'in1');
    await generateSparkify({ out: decoyInput, songs: 12, events: 200, days: 2, seed: 99 });
    const decoyLake = path.join(root, 'lake1');
    await prepareSparkifyRun({ store, input: decoyInput, output: decoyLake, runId: 'glob', duckdb });
    const decoyBefore = await snapshot(decoyLake);

    const settings = { ...duckdb, workDirectory: work };
    const run = await runSparkifyPipeline({ store, input, output, runId: 'glob', duckdb: settings });
    assert.deepEqual(run.build.rows, {
      songs: exp.songs,
      artists: exp.artists,
      users: exp.users,
      time: exp.startTimes,
      songplays: exp.nextSongEvents,
    });
    const tables = await lake(output);
    assert.equal(tables.songplays.length, exp.nextSongEvents);
    assert.equal(tables.songs.length, exp.songs);

    // An interval run merges into the published lake (reads its partitions) the same way.
    await runSparkifyPipeline({
      store,
      input,
      output,
      runId: 'glob-day',
      dataInterval: { start: '2018-11-02T00:00:00Z', end: '2018-11-03T00:00:00Z' },
      duckdb: settings,
    });
    assert.deepEqual(await lake(output), tables);
    assert.deepEqual(await snapshot(decoyLake), decoyBefore);
    await fs.rm(root, { recursive: true, force: true });
  });
});
