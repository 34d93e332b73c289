/**
 * The Temporal frontend restarts in the middle of a run (a server upgrade, a crash): the worker and the client
 * reconnect, and the run completes without re-running what had finished.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { it } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import { triggerDagRun, waitForRun } from '../client/runs';
import { startDevServer } from '../services/dev-server';
import { freePort } from '../services/free-port';
import { createTempoflowWorker } from '../worker/create-worker';
import { crashDag, createTestActivities, EventLog } from './fixtures/test-dags';
import { workflowBundle } from './support';

it('a run survives a restart of the Temporal frontend', async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'tempoflow-restart-'));
  const options = { port: await freePort(), dbFile: path.join(dir, 'temporal.db'), headless: true };
  let server = await startDevServer(options);
  const log = new EventLog();
  const taskQueue = `restart-${randomUUID()}`;
  const nativeConnection = await NativeConnection.connect({ address: server.address });
  const connection = await Connection.connect({ address: server.address });
  const client = new Client({ connection, namespace: server.namespace });
  try {
    const worker = await createTempoflowWorker({
      connection: nativeConnection,
      namespace: server.namespace,
      taskQueue,
      dags: [crashDag],
      activities: createTestActivities(log),
      workflowBundle: await workflowBundle(),
      workerOptions: { shutdownGraceTime: '1s' },
    });
    const status = await worker.runUntil(async () => {
      const run = await triggerDagRun(client, crashDag, { taskQueue, params: { sleepMs: 12_000 } });
      for (let i = 0; i < 300 && log.of('slow').length === 0; i++) await delay(100);
      assert.equal(log.of('slow').length, 1, 'the slow task is running');
      await server.stop();
      await delay(8_000); // the frontend is gone for a while
      server = await startDevServer(options);
      // The client's long poll for the result may fail while the server is away: ask again.
      for (let attempt = 1; ; attempt++) {
        try {
          return await waitForRun(run.handle);
        } catch (err) {
          if (attempt >= 30) throw err;
          await delay(1_000);
        }
      }
    });
    assert.equal(status.state, 'success');
    assert.equal(log.of('first').length, 1, 'the task that had finished did not run again');
    assert.equal(log.of('after').length, 1);
  } finally {
    await connection.close();
    await nativeConnection.close();
    await server.stop();
  }
});
