/**
 * Sensors (issue 11 item 3): a task whose activity checks a condition, with durable timers between short checks,
 * so a waiting sensor holds no worker slot. Against the real dev server; Sparkify's `wait_for_logs` check on a
 * local folder.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, it } from 'node:test';
import { createActivities } from '../activities';
import { generateSparkify, readPublished, runSparkifyPipeline, TABLES } from '../activities/sparkify';
import { checkLogsArrived } from '../activities/sparkify/wait-for-logs';
import { createStore } from '../storage';
import { triggerDagRun, waitForRun } from '../client/runs';
import { defineDag } from '../core/dag';
import { DagDefinitionError } from '../core/errors';
import type { ActivityRecord, DagRunStatus, DagSnapshot, SensorCheck, TaskContext } from '../core/types';
import { getDag } from '../dags';
import { createTestBucket, s3ClientForTests } from './services';
import { cliInProcess as cli, withTestWorker } from './support';

/** Per run: when `produce` finished (the condition the sensor waits for). */
const produced = new Map<string, number>();
/** Per run: checks the sensor's activity made. */
const checksOf = new Map<string, number>();

const waitDag = defineDag({
  id: 'test_sensor_wait',
  tasks: [
    { id: 'wait', activity: 'sensorCheckProduced', sensor: { every: '1s', timeout: '1m' } },
    // After a pause, so the sensor's first check comes first and finds nothing.
    { id: 'pause', activity: 'sensorPause' },
    { id: 'produce', activity: 'sensorProduce', upstream: ['pause'] },
    { id: 'after', activity: 'sensorEcho', upstream: ['wait'] },
  ],
});

const neverDag = (id: string, softFail: boolean) =>
  defineDag({
    id,
    tasks: [
      { id: 'wait', activity: 'sensorNever', sensor: { every: '200ms', timeout: '1200ms', softFail } },
      { id: 'strict', activity: 'sensorEcho', upstream: ['wait'] },
      { id: 'lenient', activity: 'sensorEcho', upstream: ['wait'], triggerRule: 'none_failed' },
      { id: 'cleanup', activity: 'sensorEcho', upstream: ['wait'], triggerRule: 'all_done' },
    ],
  });
const hardDag = neverDag('test_sensor_hard', false);
const softDag = neverDag('test_sensor_soft', true);

/** A sensor whose check throws every other time: each throw fails the attempt, and the task retries it. */
const flakyDag = defineDag({
  id: 'test_sensor_flaky',
  tasks: [
    {
      id: 'wait',
      activity: 'sensorFlaky',
      sensor: { every: '300ms', timeout: '2500ms' },
      retries: 30,
      retryDelay: '50ms',
      retryBackoff: 1,
    },
  ],
});
/** Per run: when its flaky sensor was first checked. */
const firstFlakyCheck = new Map<string, number>();

const activities: ActivityRecord = {
  sensorFlaky: async (ctx: TaskContext) => {
    if (!firstFlakyCheck.has(ctx.runId)) firstFlakyCheck.set(ctx.runId, Date.now());
    const checks = (checksOf.get(ctx.runId) ?? 0) + 1;
    checksOf.set(ctx.runId, checks);
    if (checks % 2 === 0) throw new Error(`check ${checks} could not reach the source`);
    return { done: false, detail: `not yet (check ${checks})` };
  },
  sensorProduce: async (ctx: TaskContext) => {
    await sleep(1500);
    produced.set(ctx.runId, Date.now());
    return 'made';
  },
  sensorCheckProduced: async (ctx: TaskContext): Promise<SensorCheck> => {
    const at = produced.get(ctx.runId);
    const checks = (checksOf.get(ctx.runId) ?? 0) + 1;
    checksOf.set(ctx.runId, checks);
    // Never done at the first check: on a loaded server `produce` may win the one activity slot before it, and
    // the test is about the wait between checks.
    if (at === undefined) return { done: false, detail: 'nothing produced yet' };
    return checks === 1 ? { done: false, detail: 'produced, confirming' } : { done: true, output: { at } };
  },
  sensorPause: async () => {
    await sleep(500);
    return null;
  },
  sensorNever: async () => ({ done: false, detail: 'never' }),
  sensorEcho: async (ctx: TaskContext) => ctx.upstream.wait ?? 'ran',
};

const task = (status: DagRunStatus, id: string) => status.tasks.find((t) => t.taskId === id)!;

void describe('sensors on the runner', () => {
  it('waits between short checks on timers: one activity slot still runs another task meanwhile', async () => {
    await withTestWorker({ dags: [waitDag], activities, maxConcurrentActivities: 1 }, async ({ client, taskQueue }) => {
      const run = await triggerDagRun(client, waitDag, { taskQueue });
      // While it waits: the sensor's checks, next check and last detail are in the status and the details.
      let waiting: DagRunStatus | undefined;
      for (let i = 0; i < 100 && !waiting; i++) {
        const status = await run.handle.query<DagRunStatus>('status');
        const wait = task(status, 'wait');
        if (wait.sensor?.nextCheckAt && wait.state === 'running') waiting = status;
        else await sleep(100);
      }
      assert.ok(waiting, 'the sensor waits for its next check');
      const sensor = task(waiting, 'wait').sensor!;
      assert.equal(task(waiting, 'wait').state, 'running');
      assert.match(sensor.lastDetail ?? '', /^(nothing produced yet|produced, confirming)$/);
      assert.ok(sensor.nextCheckAt && Date.parse(sensor.nextCheckAt) > Date.parse(task(waiting, 'wait').startedAt!));
      const metadata = await run.handle.query<{ currentDetails?: string }>('__temporal_workflow_metadata');
      assert.match(
        metadata.currentDetails ?? '',
        /- wait: sensor: \d+ checks?, next at .*; last: (nothing produced yet|produced, confirming)/,
      );

      const status = await waitForRun(run.handle);
      assert.equal(status.state, 'success');
      const wait = task(status, 'wait');
      assert.ok(wait.sensor!.checks >= 2, `checked ${wait.sensor!.checks} times`);
      assert.equal(wait.attempts, 1);
      assert.deepEqual(status.outputs.after, { at: produced.get(run.runId) });
      // With one activity slot, `produce` could only run because the waiting sensor held none.
      const produce = task(status, 'produce');
      assert.ok(Date.parse(produce.startedAt!) >= Date.parse(wait.startedAt!), 'produce started after the first check');
      assert.ok(Date.parse(produce.endedAt!) <= Date.parse(wait.endedAt!), 'produce ran while the sensor waited');

      // The history: one short activity per check and a timer between checks, never a long-running activity.
      const { events } = await run.handle.fetchHistory();
      const checks = (events ?? []).filter(
        (e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'sensorCheckProduced',
      );
      assert.equal(checks.length, wait.sensor!.checks);
      const timers = (events ?? []).filter((e) => e.timerStartedEventAttributes);
      assert.equal(timers.length, checks.length - 1);
      const at = (e: (typeof checks)[number]) => Number(e.eventTime!.seconds) * 1000 + e.eventTime!.nanos! / 1e6;
      for (const scheduled of checks) {
        const done = (events ?? []).find(
          (e) => Number(e.activityTaskCompletedEventAttributes?.scheduledEventId) === Number(scheduled.eventId),
        );
        assert.ok(done, 'each check completed');
        // From its start on a worker (not its wait for the slot) to its end.
        const started = (events ?? []).find(
          (e) => Number(e.eventId) === Number(done.activityTaskCompletedEventAttributes!.startedEventId),
        )!;
        assert.ok(at(done) - at(started) < 1000, 'each check is short');
      }

      const shown = await cli(['runs', 'show', run.runId]);
      assert.equal(shown.code, 0, shown.stderr);
      assert.match(shown.stdout, new RegExp(`wait .*sensor ${wait.sensor!.checks} checks`));
    });
  });

  it('fails on timeout, naming the sensor and its last detail; downstream follows the trigger rules', async () => {
    await withTestWorker({ dags: [hardDag, softDag], activities }, async ({ client, taskQueue }) => {
      const [hard, soft] = await Promise.all([
        triggerDagRun(client, hardDag, { taskQueue }),
        triggerDagRun(client, softDag, { taskQueue }),
      ]);
      const failed = await waitForRun(hard.handle);
      assert.equal(failed.state, 'failed');
      const wait = task(failed, 'wait');
      assert.equal(wait.state, 'failed');
      assert.equal(wait.error?.type, 'SensorTimeout');
      assert.match(wait.error.message, /sensor 'wait' timed out: .* within 1200 ms \(\d+ checks\); last check: never/);
      // Every 200 ms for 1.2 s: at most 7 checks (the first at once, the last at the deadline).
      assert.ok(wait.sensor!.checks >= 2 && wait.sensor!.checks <= 7, `checked ${wait.sensor!.checks} times`);
      assert.equal(wait.attempts, 1, 'a timeout is not retried');
      assert.deepEqual(
        ['strict', 'lenient', 'cleanup'].map((id) => task(failed, id).state),
        ['upstream_failed', 'upstream_failed', 'success'],
      );

      // softFail: skipped, and the run goes on by the trigger rules (skipped is not a failure).
      const skipped = await waitForRun(soft.handle);
      assert.equal(skipped.state, 'success');
      assert.equal(task(skipped, 'wait').state, 'skipped');
      assert.equal(task(skipped, 'wait').error?.type, 'SensorTimeout');
      assert.deepEqual(
        ['strict', 'lenient', 'cleanup'].map((id) => task(skipped, id).state),
        ['skipped', 'success', 'success'],
      );
    });
  });
});

void describe('sensor retries', () => {
  it('keep the timeout of the first check: a check that throws is retried, the sensor still times out on time', async () => {
    await withTestWorker({ dags: [flakyDag], activities }, async ({ client, taskQueue }) => {
      const run = await triggerDagRun(client, flakyDag, { taskQueue });
      const status = await waitForRun(run.handle);
      const ended = Date.now();
      const wait = task(status, 'wait');
      // Each attempt checks, waits, then throws at its second check; were the timeout counted per attempt, no
      // attempt would reach it and the task would fail with the check's error after its 31 attempts.
      assert.equal(wait.state, 'failed');
      assert.equal(wait.error?.type, 'SensorTimeout');
      assert.ok(wait.attempts > 1 && wait.attempts < 31, `${wait.attempts} attempts`);
      const elapsed = ended - firstFlakyCheck.get(run.runId)!;
      assert.ok(elapsed >= 2500 && elapsed < 2500 + 5000, `timed out ${elapsed} ms after the first check`);
      assert.ok(wait.sensor!.checks >= 2, 'checks are counted across attempts');
      assert.match(wait.error.message, /\(\d+ checks\); last check: not yet \(check \d+\)/);
    });
  });
});

void describe('sensor definitions', () => {
  it('are checked at definition time, naming the DAG and the task', () => {
    const bad =
      (sensor: unknown, extra: Record<string, unknown> = {}) =>
      () =>
        defineDag({
          id: 'bad_sensor',
          tasks: [
            { id: 'list', activity: 'x' },
            { id: 's', activity: 'x', upstream: ['list'], sensor: sensor as never, ...extra },
          ],
        });
    assert.throws(bad({ every: 'soon', timeout: '1h' }), {
      name: 'DagDefinitionError',
      message: /DAG 'bad_sensor', task 's': .*sensor\.every.*"soon" is not a duration/,
    });
    assert.throws(bad({ every: '1m' }), { name: 'DagDefinitionError', message: /task 's': sensor\.timeout/ });
    assert.throws(bad({ every: 0, timeout: '1h' }), /task 's': sensor\.every must be positive/);
    assert.throws(
      bad({ every: '1m', timeout: '1h' }, { map: { over: 'list' } }),
      /task 's': a mapped task cannot be a sensor/,
    );
    assert.throws(bad({ every: '1m', timeout: '1h' }, { pool: 'p' }), DagDefinitionError);
    const ok = defineDag({
      id: 'good_sensor',
      tasks: [{ id: 's', activity: 'x', sensor: { every: '5m', timeout: '6h', softFail: true } }],
    });
    assert.deepEqual(ok.tasks[0]!.sensor, { everyMs: 300_000, timeoutMs: 21_600_000, softFail: true });
  });
});

void describe("sparkify's wait_for_logs check", () => {
  it('passes when every day of the interval has its log file, names the missing days otherwise', async () => {
    const input = await mkdtemp(join(tmpdir(), 'sensor-logs-'));
    try {
      const store = createStore();
      const day = (d: string) => join(input, 'log_data', '2018', '11', `${d}-events.json`);
      await mkdir(join(input, 'log_data', '2018', '11'), { recursive: true });
      for (const d of ['2018-11-01', '2018-11-02', '2018-11-04']) await writeFile(day(d), '{}\n');
      await writeFile(join(input, 'log_data', '2018', '11', '.2018-11-03-events.json'), '{}\n'); // hidden: no
      const interval = (start: string, end: string) => ({ start: `${start}T00:00:00Z`, end: `${end}T00:00:00Z` });

      const some = await checkLogsArrived({ store, input, dataInterval: interval('2018-11-01', '2018-11-03') });
      assert.deepEqual(some, { done: true, detail: 'log files for all 2 days are there', output: { days: 2 } });
      const gap = await checkLogsArrived({ store, input, dataInterval: interval('2018-11-02', '2018-11-06') });
      assert.equal(gap.done, false);
      assert.match(gap.detail, /^no log file yet for 2018-11-03, 2018-11-05 \(2 of 4 days\) under .*log_data\/$/);
      const full = await checkLogsArrived({ store, input, dataInterval: null });
      assert.equal(full.done, true);

      await writeFile(day('2018-11-03'), '{}\n');
      await writeFile(day('2018-11-05'), '{}\n');
      assert.equal(
        (await checkLogsArrived({ store, input, dataInterval: interval('2018-11-02', '2018-11-06') })).done,
        true,
      );
    } finally {
      await rm(input, { recursive: true, force: true });
    }
  });
});

void describe('sparkify_etl waits for its day', () => {
  it('a daily run whose log file lands late waits for it on timers, then publishes the same lake as a run that found it', async () => {
    const s3 = await s3ClientForTests();
    try {
      const store = createStore({ s3Client: s3 });
      const input = `s3://${await createTestBucket('sensor-in')}/udacity-dend`;
      const lakeBucket = await createTestBucket('sensor-lake');
      await generateSparkify({ out: input, songs: 60, events: 1500, days: 3, seed: 9, store });
      const lateLog = `${input}/log_data/2018/11/2018-11-03-events.json`;
      const lateBody = await store.read(lateLog);
      await store.delete(lateLog);
      const dataInterval = { start: '2018-11-03T00:00:00.000Z', end: '2018-11-04T00:00:00.000Z' };

      // The DAG's own snapshot, checking every 300 ms instead of every 5 minutes (a snapshot is plain data).
      const dag: DagSnapshot = structuredClone(getDag('sparkify_etl'));
      const sensor = dag.tasks.find((t) => t.id === 'wait_for_logs')!.sensor!;
      assert.deepEqual(sensor, { everyMs: 300_000, timeoutMs: 21_600_000, softFail: false });
      sensor.everyMs = 300;
      const output = `s3://${lakeBucket}/late`;
      await withTestWorker({ dags: [dag], activities: createActivities({ store }) }, async ({ client, taskQueue }) => {
        // A run id of its own: the default (`sparkify_etl__<interval end>`) is shared by every test file on this
        // server, and a trigger of an existing id reports that run instead of starting one.
        const run = await triggerDagRun(client, dag, {
          taskQueue,
          params: { input, output },
          dataInterval,
          runId: `sensor-late-log-${randomUUID()}`,
        });
        let waiting: DagRunStatus | undefined;
        for (let i = 0; i < 300 && !waiting; i++) {
          const status = await run.handle.query<DagRunStatus>('status');
          if ((task(status, 'wait_for_logs').sensor?.checks ?? 0) >= 2) waiting = status;
          else await sleep(100);
        }
        assert.ok(waiting, 'the sensor checked twice');
        assert.equal(task(waiting, 'wait_for_logs').state, 'running');
        assert.match(
          task(waiting, 'wait_for_logs').sensor!.lastDetail!,
          /^no log file yet for 2018-11-03 \(1 of 1 days\)/,
        );
        assert.equal(task(waiting, 'list_inputs').state, 'waiting', 'nothing is staged before the day is there');

        await store.write(lateLog, lateBody);
        const status = await waitForRun(run.handle);
        assert.equal(status.state, 'success', JSON.stringify(status.tasks.map((t) => [t.taskId, t.state, t.error])));
        assert.ok(task(status, 'wait_for_logs').sensor!.checks >= 3);
        assert.deepEqual(status.outputs.wait_for_logs, { days: 1 });

        // A backfill over a day that will never have a log file does not wait with waitForLogs=false.
        const noWait = await waitForRun(
          (
            await triggerDagRun(client, dag, {
              taskQueue,
              params: { input, output: `s3://${lakeBucket}/no-wait`, waitForLogs: false },
              dataInterval: { start: '2018-11-20T00:00:00.000Z', end: '2018-11-21T00:00:00.000Z' },
              runId: `sensor-no-wait-${randomUUID()}`,
            })
          ).handle,
        );
        assert.equal(noWait.state, 'success', JSON.stringify(noWait.tasks.map((t) => [t.taskId, t.error])));
        const check = task(noWait, 'wait_for_logs');
        assert.equal(check.sensor?.checks, 1);
        assert.match(check.sensor?.lastDetail ?? '', /^not waiting \(waitForLogs=false\)/);
      });

      // The late day's lake equals the lake of a run that found its file there at once.
      const onTime = `s3://${lakeBucket}/on-time`;
      await runSparkifyPipeline({ store, input, output: onTime, runId: 'on-time', dataInterval });
      for (const table of TABLES) {
        const [late, expected] = await Promise.all([
          readPublished(store, output, table),
          readPublished(store, onTime, table),
        ]);
        assert.deepEqual(late, expected, `table ${table}`);
        if (table === 'songplays') assert.ok(late.length > 0, 'the late day has plays');
      }
    } finally {
      s3.destroy();
    }
  });
});
