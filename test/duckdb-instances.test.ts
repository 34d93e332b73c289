/** The worker's bound on DuckDB databases open at once (`--duckdb-instances`): what bounds its DuckDB memory. */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { test } from 'node:test';
import { withDuckDb } from '../worker/duckdb';
import { activityDepsFrom, resolveWorkerSettings } from '../worker/settings';

test('no more DuckDB databases are open at once than `instances`; the others wait', async () => {
  const root = await mkdtemp(path.join(tmpdir(), 'tempoflow-instances-'));
  let inside = 0;
  let most = 0;
  const order: number[] = [];
  const call = (i: number) =>
    withDuckDb({ instances: 2, memoryLimit: '256MB', threads: 1 }, path.join(root, `call-${i}`), async (conn) => {
      inside++;
      most = Math.max(most, inside);
      order.push(i);
      const r = await conn.runAndReadAll(`SELECT ${i} * 2 AS v`);
      await sleep(150);
      inside--;
      return Number(r.getRowObjectsJS()[0]!.v);
    });
  const results = await Promise.all([0, 1, 2, 3, 4, 5].map(call));
  assert.deepEqual(results, [0, 2, 4, 6, 8, 10]);
  assert.equal(most, 2);
  assert.deepEqual([...order].sort(), [0, 1, 2, 3, 4, 5]);

  // A call cancelled while it waits gives up without opening a database; the ones open are unaffected.
  const controller = new AbortController();
  const holders = [0, 1].map((i) => call(10 + i));
  const waiter = withDuckDb(
    { instances: 2 },
    path.join(root, 'waiter'),
    () => Promise.resolve('ran'),
    controller.signal,
  );
  controller.abort(new Error('task cancelled'));
  await assert.rejects(waiter, /task cancelled/);
  assert.deepEqual(await Promise.all(holders), [20, 22]);
  await rm(root, { recursive: true, force: true });
});

test('--duckdb-instances / TEMPOFLOW_DUCKDB_INSTANCES: default 2, a bad value is refused naming its source', () => {
  assert.equal(resolveWorkerSettings({}, {}).duckdb.instances, 2);
  // What the worker hands to its project's activities (createActivities' `duckdb`).
  assert.equal(activityDepsFrom(resolveWorkerSettings({}, { TEMPOFLOW_DUCKDB_INSTANCES: '3' })).duckdb.instances, 3);
  assert.equal(resolveWorkerSettings({}, { TEMPOFLOW_DUCKDB_INSTANCES: '3' }).duckdb.instances, 3);
  assert.equal(
    resolveWorkerSettings({ duckdbInstances: '1' }, { TEMPOFLOW_DUCKDB_INSTANCES: '3' }).duckdb.instances,
    1,
  );
  assert.throws(
    () => resolveWorkerSettings({}, { TEMPOFLOW_DUCKDB_INSTANCES: '0' }),
    /TEMPOFLOW_DUCKDB_INSTANCES "0": must be at least 1/,
  );
});
