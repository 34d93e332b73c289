import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import { MockActivityEnvironment } from '@temporalio/testing';
import { triggerDagRun, waitForRun } from '../client/runs';
import type { TaskContext } from '../core/types';
import { sparkifyDag } from '../dags/sparkify';
import { createStore } from '../storage';
import { createSparkifyActivities } from '../activities/sparkify/activities';
import { generateSparkify, readPublished, TABLES, type StageResult } from '../activities/sparkify';
import { withTestWorker } from './support';
import { testServices } from './services';

const store = createStore();
const activities = createSparkifyActivities({ store, duckdb: { memoryLimit: '512MB', threads: 1 } });
const tmp = (name: string) => fs.mkdtemp(path.join(os.tmpdir(), `tempoflow-dag-${name}-`));

async function reachable(address: string): Promise<boolean> {
  const [host, port] = address.split(':');
  return new Promise((resolve) => {
    const s = net.connect(Number(port), host ?? '127.0.0.1', () => (s.end(), resolve(true)));
    s.on('error', () => resolve(false));
    s.setTimeout(1000, () => (s.destroy(), resolve(false)));
  });
}

function ctx(over: Partial<TaskContext>): TaskContext {
  return {
    dagId: 'sparkify_etl',
    runId: 'activity-run',
    taskId: 'x',
    params: {},
    logicalDate: '2018-11-03T00:00:00.000Z',
    dataInterval: null,
    upstream: {},
    attempt: 1,
    ...over,
  };
}

void test('staging activities heartbeat progress and fail bad params without retries', async () => {
  const input = await tmp('act-in');
  const output = await tmp('act-out');
  await generateSparkify({ out: input, songs: 30, events: 600, days: 3, seed: 4 });
  const params = { input, output };
  const listed = (await activities.sparkifyListInputs(ctx({ params }))) as { logChunks: string[] };
  const env = new MockActivityEnvironment();
  const beats: { filesDone: number; filesTotal: number; bytesDone: number; bytesTotal: number }[] = [];
  env.on('heartbeat', (d: unknown) => beats.push(d as (typeof beats)[number]));
  const stagedOut = await env.run(activities.sparkifyStageLogs, ctx({ params, item: listed.logChunks[0] ?? '' }));
  const staged = stagedOut as StageResult;
  assert.equal(staged.files, 3);
  // The first report is sent at once; later ones within a second wait for the next (heartbeat.ts).
  assert.ok(beats.length >= 1 && beats.length <= 3, `${beats.length} heartbeats`);
  assert.ok(beats.every((b) => b.filesDone >= 1 && b.filesTotal === 3 && b.bytesTotal === staged.bytes));

  await assert.rejects(activities.sparkifyListInputs(ctx({ params: { input } })), {
    name: 'NonRetryableTaskError',
    message: /param 'output' must be a non-empty string/,
  });
  await assert.rejects(activities.sparkifyListInputs(ctx({ params: { input: input + '-none', output } })), {
    name: 'NonRetryableTaskError',
    message: /no input files/,
  });
  await fs.rm(input, { recursive: true, force: true });
  await fs.rm(output, { recursive: true, force: true });
});

const { temporal } = await testServices();
const noTemporal = (await reachable(temporal.address)) ? false : `no Temporal server at ${temporal.address}: skipped`;

void describe('the sparkify DAG on the runner', { skip: noTemporal }, () => {
  void test('a run builds and publishes the lake; a run with too many bad records publishes nothing', async () => {
    const input = await tmp('in');
    const output = await tmp('out');
    const exp = await generateSparkify({ out: input, songs: 80, events: 3000, days: 4, seed: 8, duplicates: 2 });
    await withTestWorker({ dags: [sparkifyDag], activities }, async ({ client, taskQueue }) => {
      const run = await triggerDagRun(client, sparkifyDag, {
        taskQueue,
        params: { input, output },
        dataInterval: { start: '2018-11-01T00:00:00Z', end: '2018-11-05T00:00:00Z' },
        // Not the default `sparkify_etl__<interval end>`: other test files on this server run those intervals.
        runId: `dag-test-${randomUUID()}`,
      });
      const status = await waitForRun(run.handle);
      assert.equal(status.state, 'success', JSON.stringify(status.tasks.map((t) => [t.taskId, t.state, t.error])));
      assert.deepEqual((status.outputs.build_tables as { rows: unknown }).rows, {
        songs: exp.songs,
        artists: exp.artists,
        users: exp.users,
        time: exp.startTimes,
        songplays: exp.nextSongEvents,
      });
      assert.equal(status.tasks.find((t) => t.taskId === 'stage_logs')?.mapped?.total, 1);
      assert.equal((await readPublished(store, output, 'songplays')).length, exp.nextSongEvents);
      const lake = await Promise.all(TABLES.map((t) => readPublished(store, output, t)));

      // A re-run of one day: the song input is unchanged, so no song chunk is staged and songs stay published.
      const nextDay = await waitForRun(
        (
          await triggerDagRun(client, sparkifyDag, {
            taskQueue,
            params: { input, output },
            dataInterval: { start: '2018-11-03T00:00:00Z', end: '2018-11-04T00:00:00Z' },
            runId: `dag-test-${randomUUID()}`,
          })
        ).handle,
      );
      assert.equal(nextDay.state, 'success');
      assert.equal((nextDay.outputs.list_inputs as { songsReusedFrom: unknown }).songsReusedFrom, run.runId);
      assert.equal(nextDay.tasks.find((t) => t.taskId === 'stage_songs')?.state, 'skipped');
      const checks = (nextDay.outputs.validate as { checks: { name: string; passed: boolean }[] }).checks;
      assert.ok(checks.some((c) => c.name === 'songs and artists kept' && c.passed));
      assert.deepEqual(await Promise.all(TABLES.map((t) => readPublished(store, output, t))), lake);

      // One unreadable line among few records: over 1%, so build_songs (the first build task) fails at once and
      // nothing is published.
      const bad = await tmp('bad');
      await store.copyPrefix(`${input}/song_data`, `${bad}/song_data`);
      await store.write(`${bad}/log_data/2018/11/2018-11-01-events.json`, '{"ts": oops\n{"also": "bad"}\n');
      const failed = await waitForRun(
        (await triggerDagRun(client, sparkifyDag, { taskQueue, params: { input: bad, output } })).handle,
      );
      assert.equal(failed.state, 'failed');
      const build = failed.tasks.find((t) => t.taskId === 'build_songs');
      assert.equal(build?.state, 'failed');
      assert.equal(build?.attempts, 1, 'bad input is not retried');
      // The song files are the same files (copies of a local folder are hard links): songs are kept, so the
      // two event lines are all the records this run reads.
      assert.match(build?.error?.message ?? '', /2 of 2 rejected/);
      assert.equal(failed.tasks.find((t) => t.taskId === 'publish')?.state, 'upstream_failed');
      assert.deepEqual(await Promise.all(TABLES.map((t) => readPublished(store, output, t))), lake);
      await fs.rm(bad, { recursive: true, force: true });
    });
    await fs.rm(input, { recursive: true, force: true });
    await fs.rm(output, { recursive: true, force: true });
  });
});
