/** The worker's bound on DuckDB databases open at once (`--duckdb-instances`): what bounds its DuckDB memory. */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { test } from 'node:test';
import { NonRetryableTaskError } from '../core/errors';
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

test('running out of the memory limit fails at once, naming the setting to raise', async () => {
  const root = await mkdtemp(path.join(tmpdir(), 'tempoflow-oom-'));
  try {
    // A list aggregate cannot spill: 20 million BIGINTs (~160 MB) do not fit in 32 MB.
    const err: unknown = await withDuckDb({ memoryLimit: '32MB', threads: 1 }, root, (conn) =>
      conn.run('CREATE TABLE t AS SELECT list(range) AS l FROM range(20000000)'),
    ).catch((e: unknown) => e);
    assert.ok(err instanceof NonRetryableTaskError, `expected a non-retryable error, got ${String(err)}`);
    assert.equal(err.type, 'DuckDbOutOfMemory');
    assert.match(
      err.message,
      /^DuckDB needs more memory than its limit of 32MB per task: raise TEMPOFLOW_DUCKDB_MEMORY_LIMIT/,
    );
    assert.match(err.message, /\[DuckDB: failed to allocate/);
    assert.doesNotMatch(err.message, /SET memory_limit/);
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});
