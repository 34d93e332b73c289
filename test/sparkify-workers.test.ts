/**
 * One Sparkify run on two worker processes with separate scratch folders (as on two hosts), S3 in and out: both
 * workers run tasks of the run, validate and publish go to the worker that built the tables (its own queue), and
 * the lake equals the one a single process builds, table by table.
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { it } from 'node:test';
import { Client, Connection } from '@temporalio/client';
import { generateSparkify, readTable, runSparkifyPipeline, TABLES } from '../activities/sparkify';
import { createStore, joinUri } from '../storage';
import { triggerDagRun, waitForRun } from '../client/runs';
import { sparkifyDag } from '../dags/sparkify';
import { createTestBucket, s3ClientForTests, s3EnvForTests, testServices } from './services';
import { startWorkerProcess, workflowBundle } from './support';

const tables = [...TABLES, '_state/user_days'] as const;

it('a run spread over two workers with separate scratch folders gives the one-worker lake', async () => {
  const { temporal } = await testServices();
  const dir = await mkdtemp(path.join(tmpdir(), 'tempoflow-workers-'));
  const s3 = await s3ClientForTests();
  const store = createStore({ s3Client: s3 });
  const lake = async (output: string) =>
    Promise.all(tables.map((t) => readTable(store, joinUri(output, t), t === '_state/user_days' ? 'user_days' : t)));
  const [inBucket, lakeBucket] = [await createTestBucket('workers-in'), await createTestBucket('workers-lake')];
  const input = `s3://${inBucket}/in`;
  // 60 daily files: 4 log chunks, and plays in more than one month, so the build maps over months.
  await generateSparkify({ out: input, songs: 120, events: 3000, days: 60, seed: 33, store });
  const reference = `s3://${lakeBucket}/reference`;
  await runSparkifyPipeline({ store, input, output: reference, runId: 'reference', duckdb: { threads: 1 } });
  const output = `s3://${lakeBucket}/lake`;

  const bundlePath = path.join(dir, 'workflow-bundle.js');
  writeFileSync(bundlePath, (await workflowBundle()).code);
  const taskQueue = `workers-${randomUUID()}`;
  const env = {
    ...(await s3EnvForTests()),
    TEMPORAL_ADDRESS: temporal.address,
    TEST_TASK_QUEUE: taskQueue,
    TEST_EVENT_LOG: path.join(dir, 'publish-calls.jsonl'),
    TEST_WORKFLOW_BUNDLE: bundlePath,
    TEST_OWN_QUEUE: '1',
  };
  const connection = await Connection.connect({ address: temporal.address });
  const client = new Client({ connection, namespace: temporal.namespace });
  const workers: ChildProcess[] = [];
  try {
    for (const name of ['a', 'b']) {
      workers.push(
        await startWorkerProcess('sparkify-worker-process.ts', { ...env, TEST_WORK_DIR: path.join(dir, name) }),
      );
    }
    const run = await triggerDagRun(client, sparkifyDag, { taskQueue, params: { input, output } });
    const status = await waitForRun(run.handle);
    assert.equal(status.state, 'success', JSON.stringify(status.tasks.map((t) => [t.taskId, t.state, t.error])));
    assert.ok((status.tasks.find((t) => t.taskId === 'build_plays')?.mapped?.total ?? 0) >= 2, 'months built apart');

    // Which worker (identity `<pid>@<host>`) started each activity, and on which queue it was scheduled.
    const history = await run.handle.fetchHistory();
    const scheduled = new Map<string, { activity: string; queue: string }>();
    const ranOn: { activity: string; queue: string; pid: number }[] = [];
    for (const e of history.events ?? []) {
      const s = e.activityTaskScheduledEventAttributes;
      if (s) scheduled.set(String(e.eventId), { activity: s.activityType?.name ?? '', queue: s.taskQueue?.name ?? '' });
      const started = e.activityTaskStartedEventAttributes;
      if (started) {
        const of = scheduled.get(String(started.scheduledEventId))!;
        ranOn.push({ ...of, pid: Number((started.identity ?? '').split('@')[0]) });
      }
    }
    const pids = new Set(ranOn.map((r) => r.pid));
    assert.deepEqual([...pids].sort(), workers.map((w) => w.pid).sort(), 'both workers ran tasks of the run');
    const sparkify = ranOn.filter((r) => r.activity.startsWith('sparkify'));
    for (const w of workers) {
      assert.ok(sparkify.filter((r) => r.pid === w.pid).length >= 2, `worker ${w.pid} ran Sparkify tasks`);
    }

    // validate and publish were offered to the worker that built the tables, on its own queue, and ran there.
    const builtOn = (status.outputs.build_tables as { workerQueue?: string }).workerQueue;
    assert.match(builtOn ?? '', new RegExp(`^${taskQueue}@`), 'build_tables names its worker queue');
    const builder = ranOn.find((r) => r.activity === 'sparkifyBuildTables')!.pid;
    for (const activity of ['sparkifyValidate', 'sparkifyPublish']) {
      const runs = ranOn.filter((r) => r.activity === activity);
      assert.deepEqual(runs, [{ activity, queue: builtOn, pid: builder }], `${activity} ran on the builder's queue`);
    }

    assert.deepEqual(await lake(output), await lake(reference), 'the lake equals the one-worker lake');
  } finally {
    for (const w of workers) w.kill('SIGTERM');
    await Promise.all(
      workers.map((w) => new Promise((resolve) => (w.exitCode !== null ? resolve(null) : w.once('exit', resolve)))),
    );
    await connection.close();
    s3.destroy();
    await rm(dir, { recursive: true, force: true });
  }
});
