import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { test } from 'node:test';
import { MockActivityEnvironment } from '@temporalio/testing';
import { triggerDagRun, waitForRun } from '../client/runs';
import { defineDag } from '../core/dag';
import type { TaskActivity } from '../core/types';
import { keepAlive, keepAliveInterval, reportProgress } from '../activities/heartbeat';
import { createSparkifyActivities } from '../activities/sparkify/activities';
import { generateSparkify } from '../activities/sparkify';
import { createStore, type Store } from '../storage';
import { withTestWorker } from './support';

void test('progress reported often is sent at most once a second; keepAlive sends the latest', async () => {
  const env = new MockActivityEnvironment();
  const beats: { n?: number }[] = [];
  env.on('heartbeat', (d: unknown) => beats.push(d as { n?: number }));
  await env.run(async () => {
    for (let n = 1; n <= 5_000; n++) reportProgress({ n });
    assert.deepEqual(beats, [{ n: 1 }], 'the first report at once, the 4,999 after it kept');
    await sleep(1_100);
    reportProgress({ n: 5_001 });
    assert.deepEqual(beats, [{ n: 1 }, { n: 5_001 }], 'a report a second later is sent');
    reportProgress({ n: 5_002 });
    // Kept, not lost: the keep-alive timer repeats the latest progress.
    await keepAlive(() => sleep(300), {}, { intervalMs: 100 });
    assert.deepEqual(beats.at(-1), { n: 5_002 });
  });
});

/** Each task takes 8 s with no progress to report, four times its heartbeat timeout. */
const WORK_MS = 8_000;

const heartbeatDag = defineDag({
  id: 'heartbeat_keep_alive',
  params: { input: { type: 'string', required: true }, output: { type: 'string', required: true } },
  defaults: { retries: 2, retryDelay: '100ms', heartbeatTimeout: '2s', executionTimeout: '1m' },
  tasks: [
    // A publish-like step: one long call, kept alive by the helper every Sparkify task runs in.
    { id: 'publish_like', activity: 'slowKeptAlive' },
    // The real Sparkify activity (its wrapper), over a store whose listing takes 8 s.
    { id: 'list_inputs', activity: 'sparkifyListInputs' },
    // The control: the same work without the helper is timed out while alive and attempted again.
    { id: 'silent', activity: 'slowSilent', retries: 1 },
  ],
});

void test('a task slower than its heartbeat timeout is attempted once while it is alive', async () => {
  assert.equal(keepAliveInterval(2_000), 500);
  assert.equal(keepAliveInterval(120_000), 5_000);
  assert.equal(keepAliveInterval(undefined), undefined);

  const input = await fs.mkdtemp(path.join(os.tmpdir(), 'tempoflow-hb-in-'));
  const output = await fs.mkdtemp(path.join(os.tmpdir(), 'tempoflow-hb-out-'));
  await generateSparkify({ out: input, songs: 5, events: 50, days: 1, seed: 3 });
  const started = { publish_like: 0, list_inputs: 0, silent: 0 };
  let slowListings = 0;
  const store = createStore();
  const slowListing: Store = {
    ...store,
    list: async (uri) => {
      if (uri.startsWith(input) && slowListings++ === 0) await sleep(WORK_MS);
      return store.list(uri);
    },
  };
  const sparkify = createSparkifyActivities({ store: slowListing, duckdb: { threads: 1 } });
  const activities: Record<string, TaskActivity> = {
    sparkifyListInputs: (ctx) => (started.list_inputs++, sparkify.sparkifyListInputs(ctx)),
    slowKeptAlive: () =>
      keepAlive(async () => {
        started.publish_like++;
        await sleep(WORK_MS);
        return 'published';
      }),
    slowSilent: async () => {
      started.silent++;
      await sleep(WORK_MS);
      return 'too late';
    },
  };
  try {
    await withTestWorker({ dags: [heartbeatDag], activities }, async ({ client, taskQueue }) => {
      const run = await triggerDagRun(client, heartbeatDag, { taskQueue, params: { input, output } });
      const status = await waitForRun(run.handle);
      const task = (id: string) => status.tasks.find((t) => t.taskId === id);
      assert.equal(task('publish_like')?.state, 'success', JSON.stringify(task('publish_like')));
      assert.equal(task('publish_like')?.attempts, 1);
      assert.equal(started.publish_like, 1, 'the kept-alive task ran once');
      assert.equal(task('list_inputs')?.state, 'success', JSON.stringify(task('list_inputs')));
      assert.equal(task('list_inputs')?.attempts, 1);
      assert.equal(started.list_inputs, 1, 'sparkifyListInputs ran once');
      // Without heartbeats the same work is timed out after 2 s while it still runs, and started again.
      assert.equal(task('silent')?.state, 'failed');
      assert.equal(task('silent')?.attempts, 2);
      assert.match(task('silent')?.error?.message ?? '', /heartbeat timeout/);
      assert.equal(started.silent, 2, 'the silent task was started twice while its first attempt was alive');
    });
  } finally {
    await fs.rm(input, { recursive: true, force: true });
    await fs.rm(output, { recursive: true, force: true });
  }
});
