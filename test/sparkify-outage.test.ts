/**
 * Outages and access errors on the real servers: an S3 server stopped for 2 minutes and restarted on the same
 * data (during staging, during build, during publish) is ridden out by the Sparkify DAG's own retry policy, and
 * the lake equals an uninterrupted run's; wrong credentials or a missing bucket fail the run at once.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, test } from 'node:test';
import { asyncLocalStorage } from '@temporalio/activity';
import { triggerDagRun, waitForRun } from '../client/runs';
import { sparkifyDag } from '../dags/sparkify';
import { createS3Client, createStore, type Store } from '../storage';
import { createSparkifyActivities } from '../activities/sparkify/activities';
import { generateSparkify, readPublished, runSparkifyPipeline, TABLES, type TableName } from '../activities/sparkify';
import { freePort } from '../services/free-port';
import { s3EnvFor, startS3Server, type S3Server } from '../services/s3-server';
import { createTestBucket, s3EnvForTests } from './services';
import { withTestWorker } from './support';

const OUTAGE_MS = 120_000;
const duckdb = { memoryLimit: '512MB', threads: 1 };

/** An S3 server of this test's own (the harness's shared one is never stopped), restartable on its data. */
async function ownS3(): Promise<{
  env: Record<string, string>;
  outage: (ms: number) => Promise<{ restarted: Promise<void> }>;
  stop: () => Promise<void>;
}> {
  const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'tempoflow-outage-s3-'));
  const port = await freePort();
  let server: S3Server = await startS3Server({
    dataDir: path.join(dataDir, 'objects'),
    port,
    buckets: ['sparkify-in', 'sparkify-lake'],
  }).catch(async (err: unknown) => {
    await fs.rm(dataDir, { recursive: true, force: true });
    throw err;
  });
  const credentials = { accessKeyId: server.accessKeyId, secretAccessKey: server.secretAccessKey };
  let restarting: Promise<void> = Promise.resolve();
  return {
    env: s3EnvFor(server),
    async outage(ms) {
      await server.stop();
      restarting = (async () => {
        await sleep(ms);
        server = await startS3Server({ dataDir: path.join(dataDir, 'objects'), port, credentials });
      })();
      return { restarted: restarting };
    },
    async stop() {
      await restarting.catch(() => undefined);
      await server.stop();
      await fs.rm(dataDir, { recursive: true, force: true });
    },
  };
}

/**
 * The store, with the S3 server stopped right before the `nth` storage call made by `activity` (the
 * registered activity name); every call goes on to the real server (and fails while it is down).
 */
function withOutageAt(store: Store, activity: string, nth: number, stopServer: () => Promise<void>): Store {
  let calls = 0;
  let stopping: Promise<void> | undefined;
  const wrapped: Record<string, unknown> = {};
  for (const [op, fn] of Object.entries(store)) {
    wrapped[op] = async (...args: unknown[]) => {
      if (asyncLocalStorage.getStore()?.info.activityType === activity && ++calls === nth) stopping = stopServer();
      if (stopping) await stopping;
      return (fn as (...a: unknown[]) => Promise<unknown>)(...args);
    };
  }
  return wrapped as unknown as Store;
}

async function lake(store: Store, output: string): Promise<Record<TableName, Record<string, unknown>[]>> {
  const out = {} as Record<TableName, Record<string, unknown>[]>;
  for (const t of TABLES) out[t] = await readPublished(store, output, t, duckdb);
  return out;
}

/**
 * One Sparkify run (S3 input, S3 lake, real Temporal, the DAG's own retry policy) with a 2-minute outage of
 * the S3 server at the `nth` storage call of `activity`; returns the run's status after checking its lake.
 * Concurrent tests use their own logical dates, reference run ids and lake URIs, so their run ids (and
 * worker run caches, keyed by run id) and publish locks (keyed by output URI) differ.
 */
async function runThroughOutage(activity: string, nth: number, logicalDate: string) {
  const s3 = await ownS3();
  try {
    const client = createS3Client({ env: s3.env });
    const store = createStore({ s3Client: client });
    const input = 's3://sparkify-in/sparkify';
    // Its own lake URI: the publish lock is per output URI across all runs on the Temporal server.
    const output = `s3://sparkify-lake/lake-${activity}`;
    await generateSparkify({ out: input, songs: 30, events: 600, days: 2, seed: 12, duplicates: 1, store });
    await runSparkifyPipeline({
      store,
      input,
      output: 's3://sparkify-lake/reference',
      runId: `reference-${activity}-${process.pid}`,
      duckdb,
    });
    const expected = await lake(store, 's3://sparkify-lake/reference');

    let outageStart = 0;
    let restarted: Promise<void> | undefined;
    const faulty = withOutageAt(store, activity, nth, async () => {
      outageStart = Date.now();
      ({ restarted } = await s3.outage(OUTAGE_MS));
    });
    const activities = createSparkifyActivities({ store: faulty, duckdb });
    const status = await withTestWorker({ dags: [sparkifyDag], activities }, async ({ client: tc, taskQueue }) => {
      const run = await triggerDagRun(tc, sparkifyDag, {
        taskQueue,
        params: { input, output },
        logicalDate,
      });
      return waitForRun(run.handle);
    });
    const summary = JSON.stringify(status.tasks.map((t) => [t.taskId, t.state, t.attempts, t.error, t.mapped]));
    assert.ok(outageStart > 0, `the outage happened (at call ${nth} of ${activity})`);
    assert.equal(status.state, 'success', summary);
    assert.ok(Date.parse(status.endedAt ?? '') - outageStart >= OUTAGE_MS, 'the run finished after the outage');
    await restarted;
    assert.deepEqual(await lake(store, output), expected, 'the lake equals the uninterrupted run');
    client.destroy();
    return status;
  } finally {
    await s3.stop();
  }
}

void describe('a 2-minute S3 outage is ridden out', { concurrency: 3 }, () => {
  void test('during staging', async () => {
    // Call 1 reads the chunk's manifest, call 2 the first event file.
    const status = await runThroughOutage('sparkifyStageLogs', 2, new Date(Date.now() - 1000).toISOString());
    const stage = status.tasks.find((t) => t.taskId === 'stage_logs');
    assert.equal(stage?.state, 'success');
  });

  void test('during build', async () => {
    const status = await runThroughOutage('sparkifyBuildTables', 3, new Date(Date.now() - 2000).toISOString());
    assert.ok((status.tasks.find((t) => t.taskId === 'build_tables')?.attempts ?? 0) > 1, 'build was retried');
  });

  void test('during publish', async () => {
    const status = await runThroughOutage('sparkifyPublish', 6, new Date(Date.now() - 3000).toISOString());
    assert.ok((status.tasks.find((t) => t.taskId === 'publish')?.attempts ?? 0) > 1, 'publish was retried');
  });
});

void test('wrong credentials or a missing bucket fail the run at once, naming the bucket and the setting', async () => {
  const env = await s3EnvForTests();
  const inBucket = await createTestBucket('outage-in');
  const lakeBucket = await createTestBucket('outage-lake');
  const good = createStore({ s3Client: createS3Client({ env }) });
  const input = `s3://${inBucket}/sparkify`;
  await generateSparkify({ out: input, songs: 5, events: 50, days: 1, seed: 2, store: good });
  const cases = [
    {
      store: createStore({ s3Client: createS3Client({ env: { ...env, AWS_SECRET_ACCESS_KEY: 'wrong' } }) }),
      params: { input, output: `s3://${lakeBucket}/lake` },
      message: new RegExp(`bucket '${inBucket}'.*AWS_SECRET_ACCESS_KEY`),
    },
    {
      store: createStore({ s3Client: createS3Client({ env: { ...env, AWS_ACCESS_KEY_ID: 'NOBODY' } }) }),
      params: { input, output: `s3://${lakeBucket}/lake` },
      message: new RegExp(`bucket '${inBucket}'.*AWS_ACCESS_KEY_ID.*AWS_PROFILE.*dl\\.cfg`),
    },
    {
      store: good,
      params: { input: 's3://tempoflow-no-such-input/sparkify', output: `s3://${lakeBucket}/lake` },
      message: /bucket 'tempoflow-no-such-input' does not exist.*AWS_ENDPOINT_URL_S3/,
    },
    {
      store: good,
      params: { input, output: 's3://tempoflow-no-such-lake/lake' },
      message: /bucket 'tempoflow-no-such-lake' does not exist/,
    },
  ];
  for (const c of cases) {
    const activities = createSparkifyActivities({ store: c.store, duckdb });
    const t0 = Date.now();
    const status = await withTestWorker({ dags: [sparkifyDag], activities }, async ({ client, taskQueue }) =>
      waitForRun((await triggerDagRun(client, sparkifyDag, { taskQueue, params: c.params })).handle),
    );
    const list = status.tasks.find((t) => t.taskId === 'list_inputs');
    assert.equal(status.state, 'failed');
    assert.equal(list?.state, 'failed');
    assert.equal(list?.attempts, 1, 'not retried');
    assert.equal(list?.error?.type, 'StorageAccessError');
    assert.match(list?.error?.message ?? '', c.message);
    assert.ok(!(list?.error?.message ?? '').includes(env.AWS_SECRET_ACCESS_KEY ?? 'unset'), 'no secret in the error');
    assert.ok(Date.now() - t0 < 30_000, `failed in seconds, not minutes (${Date.now() - t0} ms)`);
  }
});
