/**
 * The worker process is killed (SIGKILL) while `publish` is changing the lake; a new worker finishes the run,
 * and the lake equals the one an uninterrupted run gives, table by table.
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { it } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { Client, Connection } from '@temporalio/client';
import { generateSparkify, publishedFiles, readTable, runSparkifyPipeline, TABLES } from '../activities/sparkify';
import { RUN_MARKER } from '../activities/sparkify/lake-files';
import { createStore, joinUri } from '../storage';
import { triggerDagRun, waitForRun } from '../client/runs';
import type { DagSnapshot } from '../core/types';
import { sparkifyDag } from '../dags/sparkify';
import { testServices } from './services';
import { startWorkerProcess, workflowBundle } from './support';

const startWorker = (env: NodeJS.ProcessEnv) => startWorkerProcess('sparkify-worker-process.ts', env);

const store = createStore();
const tables = [...TABLES, '_state/user_days'] as const;
const lake = async (output: string) =>
  Promise.all(tables.map((t) => readTable(store, joinUri(output, t), t === '_state/user_days' ? 'user_days' : t)));

it('a worker killed in the middle of publish: a new worker finishes it, and the lake is whole', async () => {
  const { temporal } = await testServices();
  const dir = await mkdtemp(path.join(tmpdir(), 'tempoflow-publish-crash-'));
  const input = path.join(dir, 'input');
  await generateSparkify({ out: input, songs: 30, events: 1500, days: 5, seed: 21 });
  const reference = path.join(dir, 'reference');
  await runSparkifyPipeline({ store, input, output: reference, runId: 'reference' });
  const output = path.join(dir, 'lake');

  const bundlePath = path.join(dir, 'workflow-bundle.js');
  writeFileSync(bundlePath, (await workflowBundle()).code);
  const eventLog = path.join(dir, 'publish-calls.jsonl');
  const env = {
    TEMPORAL_ADDRESS: temporal.address,
    TEST_TASK_QUEUE: `publish-crash-${randomUUID()}`,
    TEST_EVENT_LOG: eventLog,
    TEST_WORKFLOW_BUNDLE: bundlePath,
    TEST_WORK_DIR: path.join(dir, 'work'),
  };
  const calls = (pid?: number) =>
    existsSync(eventLog)
      ? readFileSync(eventLog, 'utf8')
          .trim()
          .split('\n')
          .map((l) => JSON.parse(l) as { pid: number; call: string; uri: string })
          .filter((c) => pid === undefined || c.pid === pid)
      : [];
  // The crashed attempt is noticed when its heartbeats stop: seconds, not the DAG's two minutes.
  const dag: DagSnapshot = {
    ...sparkifyDag,
    tasks: sparkifyDag.tasks.map((t) => ({
      ...t,
      heartbeatTimeoutMs: 5_000,
      retry: { ...t.retry, initialDelayMs: 500, maxDelayMs: 1_000 },
    })),
  };

  const connection = await Connection.connect({ address: temporal.address });
  const client = new Client({ connection, namespace: temporal.namespace });
  let second: ChildProcess | undefined;
  const first = await startWorker({ ...env, TEST_SLOW_PUBLISH_MS: '150' });
  try {
    const run = await triggerDagRun(client, dag, { taskQueue: env.TEST_TASK_QUEUE, params: { input, output } });
    // Killed once publish has written its journal and added some of its files.
    for (let i = 0; i < 1200 && calls(first.pid).filter((c) => c.call === 'copy').length < 5; i++) await delay(100);
    const before = calls(first.pid);
    assert.ok(
      before.some((c) => c.call === 'copy'),
      'publish was adding files when the worker was killed',
    );
    first.kill('SIGKILL');
    await new Promise((resolve) => first.once('exit', resolve));

    second = await startWorker(env);
    const status = await waitForRun(run.handle);
    assert.equal(status.state, 'success', JSON.stringify(status.tasks.map((t) => [t.taskId, t.state, t.error])));
    const publishTask = status.tasks.find((t) => t.taskId === 'publish');
    assert.ok((publishTask?.attempts ?? 0) >= 2, 'publish ran again after the crash');
    assert.ok(calls(second.pid).length > 0, 'the new worker finished the publish');
    const published = status.outputs.publish as { leaseTakenOver?: { owner: string } };
    assert.match(published.leaseTakenOver?.owner ?? '', /#/, "the dead worker's lease was taken over, and reported");

    assert.deepEqual(await lake(output), await lake(reference), 'the lake equals an uninterrupted run');
    for (const t of tables) {
      const listed = (await store.list(joinUri(output, t))).map((o) => o.key).filter((k) => k !== RUN_MARKER);
      const named = (await publishedFiles(store, joinUri(output, t))).map((o) => o.key);
      assert.deepEqual(listed.sort(), named.sort(), `${t} holds only its marker's files`);
    }
    assert.deepEqual(await store.list(joinUri(output, '_staging')), [], 'staging removed');
  } finally {
    first.kill('SIGKILL');
    second?.kill('SIGTERM');
    await connection.close();
  }
});
