/** The CLI as a user runs it: `node bin/tempoflow.js ...` against the test Temporal server and a spawned worker. */
import { execFile, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { defaultPayloadConverter } from '@temporalio/common';
import type { DagRunStatus } from '../core/types';
import { planBackfill } from '../client/backfill';
import { styleFor, formatHeartbeat } from '../client/render';
import { InvalidFieldError } from '../core/errors';
import { intervalsBetween } from '../core/schedule';
import { getDag } from '../dags/index';
import { heartbeatsByTask } from '../client/watch';
import { resolveWorkerSettings } from '../worker/settings';
import { testServices } from './services';

const BIN = fileURLToPath(new URL('../bin/tempoflow.js', import.meta.url));
const ROOT = fileURLToPath(new URL('..', import.meta.url));

interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

let baseEnv: NodeJS.ProcessEnv = {};

/** Runs the CLI to its end. The environment has no TTY and no colours, as in CI. */
function cli(args: string[], options: { env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<CliResult> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [BIN, ...args],
      {
        cwd: ROOT,
        env: { ...baseEnv, ...options.env },
        timeout: options.timeoutMs ?? 60_000,
        maxBuffer: 10 * 1024 * 1024,
      },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === 'number' ? error.code : null) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

function assertNoStack(text: string): void {
  assert.doesNotMatch(text, /^\s+at .+\(.*:\d+:\d+\)$/m, `unexpected stack trace:\n${text}`);
}

/** `tempoflow dev` with `args`, once its banner is out; `stop()` sends Ctrl-C and expects a clean exit. */
async function startDev(args: string[]) {
  const dev = spawn(process.execPath, [BIN, 'dev', ...args], {
    cwd: ROOT,
    env: { ...baseEnv, TEMPORAL_ADDRESS: undefined },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exited = new Promise<number | null>((resolve) => dev.once('exit', (code) => resolve(code)));
  let stdout = '';
  let stderr = '';
  dev.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  dev.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const stop = async () => {
    dev.kill('SIGINT');
    assert.equal(await exited, 0, `${stdout}\n${stderr}`);
    assert.match(stderr, /stopped\n?$/);
  };
  const deadline = Date.now() + 180_000;
  while (!stdout.includes('Press Ctrl-C to stop.')) {
    if (dev.exitCode !== null || Date.now() > deadline) {
      dev.kill('SIGKILL');
      assert.fail(`dev did not start:\n${stdout}\n${stderr}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  return { stdout: () => stdout, stderr: () => stderr, stop };
}

function portIsFree(port: number): Promise<boolean> {
  return new Promise<boolean>((resolve) => {
    const s = net.createServer().once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

void describe('tempoflow CLI', () => {
  const taskQueue = `cli-test-${randomUUID()}`;
  let worker: ChildProcess | undefined;
  let workerStderr = '';
  let workerExit: Promise<number | null> | undefined;

  before(async () => {
    const { temporal } = await testServices();
    baseEnv = {
      ...process.env,
      TEMPORAL_ADDRESS: temporal.address,
      TEMPORAL_NAMESPACE: temporal.namespace,
      TEMPOFLOW_TASK_QUEUE: taskQueue,
      NO_COLOR: '1',
      FORCE_COLOR: undefined,
      DEBUG: undefined,
    };
    const w = spawn(process.execPath, [BIN, 'worker'], {
      cwd: ROOT,
      env: baseEnv,
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    worker = w;
    workerExit = new Promise((resolve) => w.once('exit', (code) => resolve(code)));
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`worker did not start:\n${workerStderr}`)), 120_000);
      w.stderr.setEncoding('utf8');
      w.stderr.on('data', (chunk: string) => {
        workerStderr += chunk;
        if (workerStderr.includes('tempoflow worker on')) {
          clearTimeout(timer);
          resolve();
        }
      });
      w.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`worker exited with ${code}:\n${workerStderr}`));
      });
    });
  });

  after(async () => {
    if (worker && worker.exitCode === null) {
      worker.kill('SIGKILL');
      await workerExit;
    }
  });

  void test('--help lists the commands', async () => {
    const { code, stdout } = await cli(['--help']);
    assert.equal(code, 0);
    for (const command of ['dags', 'trigger', 'runs', 'worker', 'dev'])
      assert.match(stdout, new RegExp(`^ {2}${command}\\b`, 'm'));
  });

  void test('dags list shows each DAG with its task count', async () => {
    const { code, stdout } = await cli(['dags', 'list']);
    assert.equal(code, 0);
    assert.match(stdout, /^dag\s+tasks\s+schedule\s+description$/m);
    assert.match(stdout, /^example_fanout\s+7\s+none\s+Squares numbers/m);
  });

  void test('dags show prints params, tasks and the graph', async () => {
    const { code, stdout } = await cli(['dags', 'show', 'example_fanout']);
    assert.equal(code, 0, stdout);
    assert.match(stdout, /^\s+count\s+integer\s+10\s+0\.\.100000\s+how many numbers to square$/m);
    assert.match(
      stdout,
      /^\s+square\s+exampleSquare\s+plan\s+all_success\s+0\s+1m\s+mapped over plan \(max 8 at once\)$/m,
    );
    assert.match(stdout, /^\s+flaky_fetch\s+exampleFlakyFetch\s+—\s+all_success\s+3 \(200ms×2\)/m);
    assert.match(stdout, /^\s+summary\s+exampleSummary\s+report_big, report_small\s+none_failed_min_one_success/m);
    assert.match(stdout, /^ {2}plan\n {2}└── square \[mapped over plan\]$/m);
    assert.match(stdout, /choose_report \[branch\] ← square, flaky_fetch/);
    // Sensors, exclusive tasks and worker preferences say so in the kind column.
    const sparkify = await cli(['dags', 'show', 'sparkify_etl']);
    assert.match(sparkify.stdout, /^\s+wait_for_logs\s+sparkifyWaitForLogs\s.*\s+sensor every 5m, up to 6h$/m);
    assert.match(sparkify.stdout, /^\s+publish\s.*\s+one at a time per output, prefers validate's worker$/m);
  });

  void test('an unknown DAG exits 2 naming the DAG', async () => {
    const { code, stdout, stderr } = await cli(['trigger', 'no_such_dag']);
    assert.equal(code, 2);
    assert.equal(stdout, '');
    assert.match(stderr, /unknown DAG 'no_such_dag' \(known: .*example_fanout/);
    assertNoStack(stderr);
    const show = await cli(['dags', 'show', 'no_such_dag']);
    assert.equal(show.code, 2);
  });

  void test('a bad param exits 2 with a message naming it, before anything starts', async () => {
    // Pointing at a closed port proves validation happens before connecting.
    const closed = `127.0.0.1:${await freePort()}`;
    const bad = await cli(['trigger', 'example_fanout', '-p', 'count=lots', '--address', closed]);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /param 'count' must be a[n]? integer, got "lots"/);
    assert.doesNotMatch(bad.stderr, /cannot reach/);
    assertNoStack(bad.stderr);
    const unknown = await cli(['trigger', 'example_fanout', '-p', 'cuont=3', '--address', closed]);
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /unknown param 'cuont' \(did you mean 'count'\?\)/);
    const range = await cli(['trigger', 'example_fanout', '-p', 'flakyFailures=11', '--address', closed]);
    assert.equal(range.code, 2);
    assert.match(range.stderr, /param 'flakyFailures' must be at most 10/);
  });

  void test('usage errors exit 2', async () => {
    const half = await cli(['trigger', 'example_fanout', '--from', '2018-11-01']);
    assert.equal(half.code, 2);
    assert.match(half.stderr, /--from and --to go together/);
    const badDate = await cli(['trigger', 'example_fanout', '--from', '2018-11-01', '--to', 'tomorrow-ish']);
    assert.equal(badDate.code, 2);
    assert.match(badDate.stderr, /--to: 'tomorrow-ish' is not a date/);
    const option = await cli(['trigger', 'example_fanout', '--bogus']);
    assert.equal(option.code, 2);
    assert.match(option.stderr, /unknown option '--bogus'/);
    const command = await cli(['dags', 'shwo']);
    assert.equal(command.code, 2);
    assert.match(command.stderr, /Did you mean show\?/);
  });

  void test('bad values the client library rejects exit 2 naming the flag; the library names the field', async () => {
    const sparkify = ['-p', 'input=/tmp/tempoflow-in', '-p', 'output=/tmp/tempoflow-out', '--dry-run'];
    const cases: [string[], RegExp][] = [
      [
        ['backfill', 'sparkify_etl', '--from', 'someday', '--to', '2018-11-02', ...sparkify],
        /--from: 'someday' is not a date/,
      ],
      [
        ['backfill', 'sparkify_etl', '--from', '2018-11-10', '--to', '2018-11-01', ...sparkify],
        /--from 2018-11-10 is after --to 2018-11-01/,
      ],
      [
        ['backfill', 'sparkify_etl', '--from', '1900-01-01', '--to', '2100-01-01', ...sparkify],
        /more than 10000 intervals between --from 1900-01-01T00:00:00.000Z and --to 2100-01-01/,
      ],
      [
        ['schedules', 'create', 'example_fanout', '--id', 'never-made', '--every', 'soon'],
        /--every: "soon" is not a duration/,
      ],
      [
        ['schedules', 'create', 'example_fanout', '--id', 'never-made', '--cron', 'on tuesdays'],
        /--cron: 'on tuesdays' is not a valid cron/,
      ],
      [
        ['schedules', 'create', 'example_fanout', '--id', 'never-made'],
        /has no schedule of its own: give --cron or --every/,
      ],
      [
        [
          'schedules',
          'create',
          'sparkify_etl',
          '--id',
          'never-made',
          '--catchup-window',
          '-1d',
          '-p',
          'input=/tmp/tempoflow-in',
          '-p',
          'output=/tmp/tempoflow-out',
        ],
        /--catchup-window: "-1d" is not a duration/,
      ],
    ];
    for (const [args, message] of cases) {
      const { code, stderr } = await cli(args);
      assert.equal(code, 2, `${args.join(' ')}:\n${stderr}`);
      assert.match(stderr, message);
      assertNoStack(stderr);
    }
    assert.throws(
      () => planBackfill(getDag('sparkify_etl'), '2018-11-10', '2018-11-01'),
      (err: unknown) =>
        err instanceof InvalidFieldError &&
        err.field === 'from' &&
        err.message === 'from 2018-11-10 is after to 2018-11-01',
    );
    assert.throws(
      () => intervalsBetween({ everyMs: 1000 }, new Date(0), new Date(1e9)),
      (err: unknown) => err instanceof InvalidFieldError && err.field === 'to' && !err.message.includes('--'),
    );
  });

  void test('an unreachable Temporal server is one clear line and exit 2', async () => {
    const address = `127.0.0.1:${await freePort()}`;
    const { code, stderr } = await cli(['runs', 'list', '--address', address]);
    assert.equal(code, 2);
    assert.match(
      stderr,
      new RegExp(`cannot reach Temporal at ${address} \\(connection refused\\): start one with \`tempoflow dev\``),
    );
    assertNoStack(stderr);
    assert.equal(stderr.trim().split('\n').length, 1, stderr);
  });

  const runs: { ok?: DagRunStatus } = {};

  void test('trigger --wait --json runs example_fanout to success and prints one JSON document', async () => {
    const { code, stdout, stderr } = await cli(['trigger', 'example_fanout', '-p', 'count=3', '--wait', '--json']);
    assert.equal(code, 0, stderr);
    const status = JSON.parse(stdout) as DagRunStatus; // throws unless stdout is exactly one JSON document
    runs.ok = status;
    assert.equal(status.dagId, 'example_fanout');
    assert.equal(status.state, 'success');
    assert.deepEqual(status.params, { count: 3, threshold: 500, flakyFailures: 2 });
    const states = Object.fromEntries(status.tasks.map((t) => [t.taskId, t.state]));
    // 1 + 4 + 9 + 100 (flaky_fetch's bonus) = 114 <= 500: the small report runs.
    assert.deepEqual(states, {
      plan: 'success',
      flaky_fetch: 'success',
      square: 'success',
      choose_report: 'success',
      report_big: 'skipped',
      report_small: 'success',
      summary: 'success',
    });
    const task = (id: string) => status.tasks.find((t) => t.taskId === id)!;
    assert.equal(task('flaky_fetch').attempts, 3);
    assert.equal(task('square').mapped?.total, 3);
    assert.deepEqual(status.outputs.square, [1, 4, 9]);
    // Progress went to stderr, one line per state change (no TTY).
    assert.match(stderr, /flaky_fetch\s+up_for_retry/);
    assert.match(stderr, /summary\s+success/);
  });

  void test('a failed run exits 1 and names the failed task and its error', async () => {
    const { code, stdout } = await cli([
      'trigger',
      'example_fanout',
      '-p',
      'count=2',
      '-p',
      'flakyFailures=6',
      '--wait',
    ]);
    assert.equal(code, 1, stdout);
    assert.match(stdout, /✘ example_fanout run failed/);
    assert.match(stdout, /^\s+flaky_fetch: Error: example source unavailable \(attempt 4 of a planned 6 failures\)$/m);
    assert.match(stdout, /^choose_report\s+✘ upstream_failed/m);
  });

  void test('runs retry runs a task and its downstream again, reuses the rest, and prints the run as show does', async () => {
    const first = await cli(['trigger', 'example_fanout', '-p', 'count=2', '--wait']);
    assert.equal(first.code, 0, first.stdout);
    const runId = /run id\s+(\S+)/.exec(first.stdout)?.[1] ?? '';
    const typo = await cli(['runs', 'retry', runId, '-t', 'sqaure']);
    assert.notEqual(typo.code, 0);
    assert.match(typo.stderr, /DAG 'example_fanout' has no task 'sqaure' \(did you mean 'square'\?\)/);
    const retried = await cli(['runs', 'retry', runId, '-t', 'square', '--wait']);
    assert.equal(retried.code, 0, `${retried.stdout}\n${retried.stderr}`);
    assert.match(retried.stdout, /↻ run \S+ again: square, choose_report, report_big, report_small, summary$/m);
    assert.match(retried.stdout, /^ {2}reused: plan, flaky_fetch$/m);
    assert.match(retried.stdout, /^square\s+✔ success\s+1\s+2\/2\s/m);
    // The DAG's summary, as `runs show` and `trigger --wait` print it.
    assert.match(retried.stdout, /^ {4}summary +\{"chosen":\[\{"task":"report_small"/m);
  });

  void test('trigger without --wait prints the run id and its Web UI link; again for the same date says it exists', async () => {
    const args = ['trigger', 'example_fanout', '--from', '2018-11-01', '--to', '2018-11-02', '-p', 'count=1'];
    const first = await cli([...args, '--json']);
    assert.equal(first.code, 0, first.stderr);
    const started = JSON.parse(first.stdout) as Record<string, unknown>;
    assert.equal(started.runId, 'example_fanout__2018-11-02T00:00:00.000Z');
    assert.equal(started.created, true);
    assert.deepEqual(started.dataInterval, { start: '2018-11-01T00:00:00.000Z', end: '2018-11-02T00:00:00.000Z' });
    // A server on this machine serves its Web UI at the frontend port + 1000, as `temporal server start-dev` does.
    const uiPort = Number(baseEnv.TEMPORAL_ADDRESS!.split(':')[1]) + 1000;
    assert.equal(
      started.url,
      `http://127.0.0.1:${uiPort}/namespaces/default/workflows/example_fanout__2018-11-02T00%3A00%3A00.000Z`,
    );
    const again = await cli(args, { env: { TEMPORAL_UI_URL: 'http://ui.example:8080/' } });
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, /already exists/);
    assert.match(again.stdout, /run id\s+example_fanout__2018-11-02T00:00:00\.000Z/);
    assert.match(
      again.stdout,
      /Web UI\s+http:\/\/ui\.example:8080\/namespaces\/default\/workflows\/example_fanout__2018-11-02T00%3A00%3A00\.000Z/,
    );
  });

  void test("a location param's relative path is recorded absolute, against the folder the CLI ran in", async () => {
    // Relative to the CLI's folder (the repository), pointing into a fresh temporary folder: nothing is there to read.
    const where = mkdtempSync(path.join(tmpdir(), 'tempoflow-relative-'));
    try {
      const relative = (name: string) => path.relative(ROOT, path.join(where, name));
      const started = await cli([
        'trigger',
        'sparkify_etl',
        '-p',
        `input=${relative('input')}`,
        '-p',
        `output=${relative('lake')}`,
        '--logical-date',
        '2001-01-01',
        '--json',
      ]);
      assert.equal(started.code, 0, started.stderr);
      const params = (JSON.parse(started.stdout) as { params: Record<string, unknown> }).params;
      assert.equal(params.input, path.join(where, 'input'));
      assert.equal(params.output, path.join(where, 'lake'));
    } finally {
      rmSync(where, { recursive: true, force: true });
    }
  });

  void test('runs list --dag finds the run', async () => {
    assert.ok(runs.ok, 'needs the run of the --wait test');
    const json = await cli(['runs', 'list', '--dag', 'example_fanout', '--limit', '50', '--json']);
    assert.equal(json.code, 0, json.stderr);
    const listed = JSON.parse(json.stdout) as { runId: string; dagId: string; state: string }[];
    const found = listed.find((r) => r.runId === runs.ok!.runId);
    assert.deepEqual(found && { dagId: found.dagId, state: found.state }, {
      dagId: 'example_fanout',
      state: 'success',
    });
    const text = await cli(['runs', 'list', '--dag', 'example_fanout', '--limit', '50']);
    assert.equal(text.code, 0);
    assert.match(text.stdout, /^run id\s+dag\s+state\s+logical date\s+started\s+duration$/m);
    assert.match(
      text.stdout,
      new RegExp(`^${runs.ok.runId.replace(/\./g, '\\.')}\\s+example_fanout\\s+success\\s`, 'm'),
    );
    const none = await cli(['runs', 'list', '--dag', 'no_such_dag']);
    assert.equal(none.code, 0);
    assert.match(none.stdout, /no runs for DAG 'no_such_dag'/);
  });

  void test('runs show prints the header and the task table', async () => {
    assert.ok(runs.ok, 'needs the run of the --wait test');
    const { code, stdout, stderr } = await cli(['runs', 'show', runs.ok.runId]);
    assert.equal(code, 0, stderr);
    assert.match(stdout, /^\s+dag\s+example_fanout$/m);
    assert.match(stdout, /^\s+state\s+success\s+6 success · 1 skipped$/m);
    assert.match(stdout, /^\s+params\s+count=3 threshold=500 flakyFailures=2$/m);
    assert.match(stdout, /^task\s+state\s+tries\s+progress\s+started\s+duration\s+error$/m);
    assert.match(stdout, /^square\s+✔ success\s+1\s+3\/3\s/m);
    assert.match(stdout, /^flaky_fetch\s+✔ success\s+3\s/m);
    assert.match(stdout, /^report_big\s+» skipped$/m);
    const missing = await cli(['runs', 'show', 'no_such_run']);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /no run 'no_such_run'/);
  });

  void test('the worker stops cleanly on SIGINT', async () => {
    assert.ok(worker && workerExit);
    worker.kill('SIGINT');
    const code = await Promise.race([workerExit, new Promise((r) => setTimeout(() => r('timeout'), 30_000))]);
    assert.equal(code, 0, workerStderr);
    assert.match(workerStderr, /worker stopped/);
  });

  void test('generate refuses a location holding an earlier dataset, or replaces it with --replace', async () => {
    const out = mkdtempSync(path.join(tmpdir(), 'tempoflow-generate-'));
    try {
      const args = ['generate', 'sparkify', '--out', out, '--events', '100', '--days', '2'];
      assert.equal((await cli([...args, '--songs', '30'])).code, 0);
      const again = await cli([...args, '--songs', '10']);
      assert.equal(again.code, 2);
      assert.match(again.stderr, /log_data already holds 2 files: .*--replace/);
      const replaced = await cli([...args, '--songs', '10', '--replace']);
      assert.equal(replaced.code, 0, replaced.stderr);
      const songFiles = readdirSync(path.join(out, 'song_data'), { recursive: true }).filter((f) =>
        String(f).endsWith('.json'),
      );
      assert.equal(songFiles.length, 10, 'only the new dataset is left');
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });

  void test('a worker that cannot write its task logs exits at start naming the location, not Temporal', async () => {
    const closed = `http://127.0.0.1:${await freePort()}`;
    const s3 = { AWS_ACCESS_KEY_ID: 'x', AWS_SECRET_ACCESS_KEY: 'y', AWS_REGION: 'us-east-1', AWS_MAX_ATTEMPTS: '1' };
    const result = await cli(['worker', '--log-location', 's3://logs-bucket/tasks'], {
      env: { ...s3, AWS_ENDPOINT_URL_S3: closed },
    });
    assert.notEqual(result.code, 0);
    assert.match(result.stderr, /cannot write task logs to s3:\/\/logs-bucket\/tasks: S3 unavailable/);
    assert.doesNotMatch(result.stderr, /cannot reach Temporal/);
    assertNoStack(result.stderr);
  });

  void test(
    'dev starts a server, its Web UI and a worker, names what a run needs, and stops on Ctrl-C',
    {
      timeout: 240_000,
    },
    async () => {
      // A free port whose + 1000 is free too: dev serves the Web UI there unless told otherwise, as the Temporal CLI.
      let port = await freePort();
      while (port + 1000 > 65535 || !(await portIsFree(port + 1000))) port = await freePort();
      const uiPort = port + 1000;
      const dev = await startDev(['--port', String(port)]);
      try {
        const address = `127.0.0.1:${port}`;
        // The suggested command names the param the first DAG cannot run without.
        assert.match(
          dev.stdout(),
          new RegExp(`^ {4}npx tempoflow trigger sparkify_etl -p output=<output> --wait --address ${address}$`, 'm'),
        );
        const ui = await fetch(`http://127.0.0.1:${uiPort}/`);
        assert.equal(ui.status, 200);
        // The CLI finds the Web UI from the address alone: no export needed, and `runs show` links to it.
        assert.doesNotMatch(dev.stdout(), /TEMPORAL_UI_URL/);
        const run = await cli(['trigger', 'example_fanout', '-p', 'count=3', '--wait', '--address', address]);
        assert.equal(run.code, 0, `${run.stdout}\n${run.stderr}\n${dev.stderr()}`);
        assert.match(run.stdout, /✔ example_fanout run succeeded in/);
        // The worker keeps task logs where the banner says, so `runs logs` in another shell finds them.
        const logLocation = /^ {4}export TEMPOFLOW_LOG_LOCATION=(\S+)$/m.exec(dev.stdout())?.[1];
        assert.ok(logLocation, `no log location in:\n${dev.stdout()}`);
        const runId = /run id\s+(\S+)/.exec(run.stdout)?.[1] ?? '';
        const logs = await cli(['runs', 'logs', runId, '--task', 'square', '--address', address], {
          env: { TEMPOFLOW_LOG_LOCATION: logLocation },
        });
        assert.equal(logs.code, 0, `${logs.stdout}\n${logs.stderr}`);
        assert.equal(logs.stdout.match(/square\[\d\]#1 .*succeeded/g)?.length, 3, logs.stdout);
        const shown = await cli(['runs', 'show', runId, '--address', address], { env: { TEMPORAL_UI_URL: undefined } });
        assert.equal(shown.code, 0, shown.stderr);
        assert.match(
          shown.stdout,
          new RegExp(`Web UI\\s+http://127\\.0\\.0\\.1:${uiPort}/namespaces/default/workflows/`),
        );
      } finally {
        await dev.stop();
      }
      const logLocation = /^ {4}export TEMPOFLOW_LOG_LOCATION=(\S+)$/m.exec(dev.stdout())?.[1] ?? '';
      assert.equal(existsSync(logLocation), false, 'task logs of the in-memory server go with it');
      for (const p of [port, uiPort]) assert.ok(await portIsFree(p), `port ${p} is still in use after dev stopped`);
    },
  );

  void test(
    'dev --s3 starts an S3 server with a bucket: sample data generated into it runs through sparkify_etl',
    { timeout: 240_000 },
    async () => {
      const port = await freePort();
      const dev = await startDev(['--s3', '--port', String(port)]);
      try {
        assert.match(dev.stdout(), /^ {2}Buckets +s3:\/\/tempoflow$/m);
        // What the banner tells another shell to export, as a user would paste it.
        const exported = Object.fromEntries(
          [...dev.stdout().matchAll(/^ {4}export (AWS_\w+)=(\S+)$/gm)].map((m) => [m[1]!, m[2]!.replace(/^'|'$/g, '')]),
        );
        assert.ok(exported.AWS_ENDPOINT_URL_S3 && exported.AWS_SECRET_ACCESS_KEY, dev.stdout());
        const env = { ...exported, TEMPORAL_ADDRESS: `127.0.0.1:${port}` };
        const generated = await cli(
          ['generate', 'sparkify', '--out', 's3://tempoflow/input', '--songs', '20', '--events', '300', '--days', '2'],
          { env },
        );
        assert.equal(generated.code, 0, `${generated.stdout}\n${generated.stderr}`);
        const run = await cli(
          ['trigger', 'sparkify_etl', '-p', 'input=s3://tempoflow/input', '-p', 'output=s3://tempoflow/lake', '--wait'],
          { env, timeoutMs: 180_000 },
        );
        assert.equal(run.code, 0, `${run.stdout}\n${run.stderr}\n${dev.stderr()}`);
        assert.match(run.stdout, /✔ sparkify_etl run succeeded in/);
        const bad = await cli(['dev', '--bucket', 'Not_A_Bucket']);
        assert.equal(bad.code, 2);
        assert.match(bad.stderr, /--bucket.*must be 3-63 lowercase letters/);
      } finally {
        await dev.stop();
      }
    },
  );

  void test('trigger --local runs the example on its own server and exits 0', { timeout: 240_000 }, async () => {
    const { code, stdout, stderr } = await cli(['trigger', 'example_fanout', '--local', '-p', 'count=4'], {
      timeoutMs: 230_000,
      env: { TEMPORAL_ADDRESS: `127.0.0.1:${await freePort()}` }, // --local must not need any server
    });
    assert.equal(code, 0, `${stdout}\n${stderr}`);
    assert.match(stdout, /^square\s+✔ success\s+1\s+4\/4\s/m);
    // flaky_fetch failed twice before it succeeded: its table says so, and the SDK's warnings do not repeat it.
    assert.match(stdout, /^flaky_fetch\s+✔ success\s+3\s/m);
    assert.doesNotMatch(stderr, /\[WARN\]|Activity failed|taskToken/);
    assertNoStack(stderr);
    assert.match(stdout, /✔ example_fanout run succeeded in/);
    // The run's summary (the example has no hook: its final task's output, in full).
    assert.match(
      stdout,
      /^ {4}summary +\{"chosen":\[\{"task":"report_small","out":\{"report":"report_small","items":4\}\}\]\}$/m,
    );
  });
});

void describe('CLI building blocks', () => {
  void test('worker settings name the environment variable or flag that is wrong', () => {
    assert.throws(
      () => resolveWorkerSettings({}, { TEMPOFLOW_MAX_CONCURRENT_ACTIVITIES: 'many' }),
      /TEMPOFLOW_MAX_CONCURRENT_ACTIVITIES "many": must be a whole number/,
    );
    assert.throws(
      () => resolveWorkerSettings({ address: 'localhost' }, {}),
      /--address "localhost": must be host:port/,
    );
    assert.throws(
      () => resolveWorkerSettings({}, { TEMPOFLOW_DUCKDB_MEMORY_LIMIT: 'lots' }),
      /TEMPOFLOW_DUCKDB_MEMORY_LIMIT/,
    );
    assert.throws(
      () => resolveWorkerSettings({}, { TEMPOFLOW_WORKFLOW_STACK_TRACE_FRAMES: '-1' }),
      /TEMPOFLOW_WORKFLOW_STACK_TRACE_FRAMES "-1": must be at least 0/,
    );
    assert.equal(
      resolveWorkerSettings({ workflowStackTraceFrames: '12' }, { TEMPOFLOW_WORKFLOW_STACK_TRACE_FRAMES: '3' })
        .workflowStackTraceFrames,
      12,
    );
    const settings = resolveWorkerSettings(
      { taskQueue: 'q' },
      { TEMPOFLOW_TASK_QUEUE: 'ignored', TEMPOFLOW_DUCKDB_THREADS: '3' },
    );
    assert.equal(settings.taskQueue, 'q');
    assert.equal(settings.maxConcurrentActivities, 4);
    assert.equal(settings.workflowStackTraceFrames, 0, 'no workflow stack traces unless asked for');
    assert.deepEqual(
      { ...settings.duckdb, tempDirectory: '' },
      { memoryLimit: '2GB', threads: 3, tempDirectory: '', instances: 2 },
    );
  });

  void test('heartbeat details show as files and bytes, attributed to the running task', () => {
    assert.equal(
      formatHeartbeat({ filesDone: 12, filesTotal: 40, bytesDone: 3_100_000, bytesTotal: 9_800_000 }),
      '12/40 files, 3.1/9.8 MB',
    );
    const status = {
      tasks: [
        { taskId: 'load', activity: 'loadFiles', state: 'running', attempts: 1 },
        { taskId: 'other', activity: 'loadFiles', state: 'success', attempts: 1 },
      ],
    } as unknown as DagRunStatus;
    const payload = defaultPayloadConverter.toPayload({
      filesDone: 1,
      filesTotal: 2,
      bytesDone: 500,
      bytesTotal: 1000,
    });
    const byTask = heartbeatsByTask(status, [
      { activityType: { name: 'loadFiles' }, heartbeatDetails: { payloads: [payload] } },
    ]);
    assert.deepEqual([...byTask], [['load', '1/2 files, 0.5/1.0 kB']]);
    assert.equal(styleFor(process.stdout, { NO_COLOR: '1' }).red('x'), 'x');
  });
});
