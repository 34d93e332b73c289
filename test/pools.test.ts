/**
 * Pools (issue 11 item 6): named slots shared by every run of every DAG, one pool workflow per pool. Against the
 * real dev server; the CLI runs in this process (`pools set/list/delete`, `runs show`).
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, it } from 'node:test';
import { getPool, setPool } from '../client/pools';
import { mapLimit } from '../storage/concurrency';
import { poolWorkflowId } from '../workflows/resource-pool';
import { acquireLockSignal, releaseLockSignal } from '../workflows/resource-lock';
import { triggerDagRun, waitForRun } from '../client/runs';
import { defineDag } from '../core/dag';
import type { ActivityRecord, DagRunStatus, DagSnapshot, TaskContext } from '../core/types';
import { cliInProcess, withTestWorker } from './support';

/** When each pooled task instance ran, by pool (the activity records it). */
const spans = new Map<string, { runId: string; start: number; end: number }[]>();
/** Runs whose `hold` activity should return now. */
const letGo = new Set<string>();
/** Pools whose `work` instances keep their slot, after their sleep, until the test has seen them queue. */
const gated = new Set<string>();

const pooledDag = (id: string) =>
  defineDag({
    id,
    params: { pool: { type: 'string', required: true }, ms: { type: 'integer', default: 600 } },
    tasks: [
      { id: 'before', activity: 'poolNoop' },
      // The pool is a param here only so each test has its own; a DAG names its pool in the task.
      { id: 'work', activity: 'poolWork', upstream: ['before'], pool: 'placeholder' },
    ],
  });

/** The same DAG with the task's pool set to `pool` (a snapshot is plain data). */
function withPool<T extends DagSnapshot>(dag: T, pool: string, slots = 1): T {
  const copy = structuredClone(dag);
  copy.tasks.find((t) => t.pool)!.pool = { name: pool, slots };
  return copy;
}

const dagA = pooledDag('test_pool_a');
const dagB = pooledDag('test_pool_b');
const holdDag = defineDag({
  id: 'test_pool_hold',
  params: { pool: { type: 'string', required: true } },
  tasks: [{ id: 'hold', activity: 'poolHold', pool: 'placeholder' }],
});

const activities: ActivityRecord = {
  poolNoop: async () => null,
  poolWork: async (ctx: TaskContext) => {
    const start = Date.now();
    await sleep(Number(ctx.params.ms));
    const pool = ctx.params.pool as string;
    while (gated.has(pool)) await sleep(50);
    spans.set(pool, [...(spans.get(pool) ?? []), { runId: ctx.runId, start, end: Date.now() }]);
    return null;
  },
  poolHold: async (ctx: TaskContext) => {
    for (let i = 0; i < 600 && !letGo.has(ctx.runId); i++) await sleep(100);
    return null;
  },
};

/** Most task instances of `pool` running at once. */
function peak(pool: string): number {
  const edges = (spans.get(pool) ?? []).flatMap((s) => [
    { at: s.start, delta: 1 },
    { at: s.end, delta: -1 },
  ]);
  edges.sort((a, b) => a.at - b.at || a.delta - b.delta);
  let current = 0;
  let most = 0;
  for (const e of edges) most = Math.max(most, (current += e.delta));
  return most;
}

/** The CLI in this process, on `taskQueue` when given (a pool's workflow runs on the queue that set it). */
const cli = (args: string[], taskQueue?: string) =>
  cliInProcess([...(taskQueue ? ['--task-queue', taskQueue] : []), ...args]);

const uniquePool = (what: string) => `${what}_${randomUUID().slice(0, 8)}`;
const task = (status: DagRunStatus, id: string) => status.tasks.find((t) => t.taskId === id)!;
/** `n` logical dates from day `from` of 2001: distinct dates give distinct runs (a run id names its date). */
const dates = (n: number, from = 1) =>
  Array.from({ length: n }, (_, i) => new Date(Date.UTC(2001, 0, from + i)).toISOString());

void describe('pools', () => {
  it('a pool of 1 serializes tasks of two DAGs; a pool of 2 lets two run at once; list shows usage', async () => {
    await withTestWorker({ dags: [dagA, dagB], activities }, async ({ client, taskQueue }) => {
      const single = uniquePool('single');
      const set = await cli(['pools', 'set', single, '1', '--description', 'one at a time'], taskQueue);
      assert.equal(set.code, 0, set.stderr);
      assert.match(set.stdout, new RegExp(`pool ${single}: 1 slots \\(0 used\\)`));

      const a = withPool(dagA, single);
      const b = withPool(dagB, single);
      // The first holder keeps its slot until both views below have seen the queue, however slow each poll is.
      gated.add(single);
      const runs = await Promise.all(
        dates(4).map((logicalDate, i) =>
          triggerDagRun(client, i % 2 ? b : a, { taskQueue, logicalDate, params: { pool: single, ms: 700 } }),
        ),
      );
      // While they queue: the pool's usage, and a waiting task's status says what it waits for.
      let listed: { name: string; slots: number; used: number; waiting: number; description?: string }[] = [];
      let waitingFor: string | undefined;
      const deadline = Date.now() + 60_000;
      while (!(waitingFor && listed.some((p) => p.waiting > 0)) && Date.now() < deadline) {
        const list = await cli(['pools', 'list', '--json']);
        assert.equal(list.code, 0, list.stderr);
        const pools = JSON.parse(list.stdout) as typeof listed;
        if (pools.find((p) => p.name === single && p.waiting > 0)) listed = pools;
        for (const run of runs) {
          const work = task(await run.handle.query<DagRunStatus>('status'), 'work');
          if (work.state === 'scheduled' && work.waitingFor?.includes('used')) waitingFor ??= work.waitingFor;
        }
        await sleep(100);
      }
      gated.delete(single);
      const pool = listed.find((p) => p.name === single);
      assert.ok(pool, 'pools list showed the pool with tasks waiting');
      assert.deepEqual(
        { slots: pool.slots, used: pool.used, description: pool.description },
        {
          slots: 1,
          used: 1,
          description: 'one at a time',
        },
      );
      assert.ok(pool.waiting >= 1 && pool.waiting <= 3);
      assert.match(waitingFor ?? '', new RegExp(`^pool ${single} \\(1/1 used(, \\d waiting)?\\)$`));
      const table = await cli(['pools', 'list']);
      assert.match(table.stdout, new RegExp(`${single} +1 +[01] +\\d +one at a time`));

      const statuses = await Promise.all(runs.map((r) => waitForRun(r.handle)));
      assert.deepEqual(
        statuses.map((s) => s.state),
        Array(4).fill('success'),
      );
      assert.equal(spans.get(single)?.length, 4);
      assert.equal(peak(single), 1, 'never two at once');
      assert.equal((await getPool(client, single)).used, 0, 'every slot came back');

      // Two slots: two at once, never three.
      const double = uniquePool('double');
      await setPool(client, double, { slots: 2, taskQueue });
      const pairs = await Promise.all(
        dates(4, 11).map((logicalDate, i) =>
          triggerDagRun(client, withPool(i % 2 ? dagB : dagA, double), {
            taskQueue,
            logicalDate,
            params: { pool: double, ms: 1500 },
          }),
        ),
      );
      for (const r of pairs) assert.equal((await waitForRun(r.handle)).state, 'success');
      assert.equal(peak(double), 2);
      // A pool's workflow is served by this test's worker only: delete them before it stops.
      for (const name of [single, double]) assert.equal((await cli(['pools', 'delete', name])).code, 0);
    });
  });

  it('delete refuses a pool in use; a deleted pool fails the task that names it; a terminated holder frees its slot', async () => {
    await withTestWorker({ dags: [holdDag, dagA], activities }, async ({ client, taskQueue }) => {
      const name = uniquePool('held');
      await setPool(client, name, { slots: 1, taskQueue });
      const hold = withPool(holdDag, name);
      const [first, second] = await Promise.all(
        dates(2).map((logicalDate) => triggerDagRun(client, hold, { taskQueue, logicalDate, params: { pool: name } })),
      );
      const holder = async () => {
        for (const deadline = Date.now() + 60_000; Date.now() < deadline;) {
          const states = await Promise.all(
            [first!, second!].map(async (r) => task(await r.handle.query<DagRunStatus>('status'), 'hold').state),
          );
          const index = states.indexOf('running');
          if (index >= 0 && states.includes('scheduled')) return index === 0 ? [first!, second!] : [second!, first!];
          await sleep(100);
        }
        throw new Error('no run took the slot');
      };
      const [running, waiting] = await holder();

      const refused = await cli(['pools', 'delete', name]);
      assert.equal(refused.code, 2, refused.stdout);
      assert.match(
        refused.stderr,
        new RegExp(`pool '${name}' is in use \\(1 of 1 slots held, 1 waiting; held by ${running!.runId}\\)`),
      );
      assert.doesNotMatch(refused.stderr, /\n\s+at /, 'no stack trace');

      // The holder's run is terminated (its activity keeps running, never releasing): the slot comes back.
      await running!.handle.terminate('test: a runner that dies');
      const started = Date.now();
      for (let i = 0; i < 300; i++) {
        const state = task(await waiting!.handle.query<DagRunStatus>('status'), 'hold').state;
        if (state === 'running') break;
        await sleep(100);
      }
      assert.equal(task(await waiting!.handle.query<DagRunStatus>('status'), 'hold').state, 'running');
      assert.ok(Date.now() - started < 25_000, 'the waiting run got the slot soon after the holder died');
      letGo.add(waiting!.runId);
      letGo.add(running!.runId);
      assert.equal((await waitForRun(waiting!.handle)).state, 'success');

      const deleted = await cli(['pools', 'delete', name]);
      assert.equal(deleted.code, 0, `stdout: ${deleted.stdout}\nstderr: ${deleted.stderr}`);
      const after = await cli(['pools', 'list', '--json']);
      assert.equal(after.code, 0, after.stderr);
      assert.ok(!(JSON.parse(after.stdout) as { name: string }[]).some((p) => p.name === name));

      // A pool that does not exist: the task fails at once, naming the pool, the task and the DAG.
      const orphan = await waitForRun(
        (await triggerDagRun(client, withPool(dagA, name), { taskQueue, params: { pool: name } })).handle,
      );
      assert.equal(orphan.state, 'failed');
      const work = task(orphan, 'work');
      assert.equal(work.error?.type, 'PoolNotFound');
      assert.equal(
        work.error?.message,
        `pool '${name}' (task 'work' of DAG 'test_pool_a') does not exist: create it with 'tempoflow pools set ${name} <slots>'`,
      );
    });
  });

  it("a holder that never releases loses its slot when its lease ends; holders keep slot and lease across the pool's continue-as-new", async () => {
    // The holders here are requests signalled by the test in the name of a run that is alive but never releases
    // (as a runner whose release signal was lost): only their lease brings their slots back.
    const idleDag = defineDag({ id: 'test_pool_idle', tasks: [{ id: 'hold', activity: 'poolHold' }] });
    await withTestWorker({ dags: [idleDag, dagA], activities }, async ({ client, taskQueue }) => {
      const name = uniquePool('lease');
      await setPool(client, name, { slots: 1, taskQueue });
      const pool = client.workflow.getHandle(poolWorkflowId(name));
      const requester = await triggerDagRun(client, idleDag, { taskQueue });
      const acquire = (requestId: string, leaseMs: number) =>
        pool.signal(acquireLockSignal, { requesterId: requester.runId, requestId, leaseMs });

      const leaseMs = 4_000;
      const signalled = Date.now();
      await acquire('stuck-holder', leaseMs);
      const run = await triggerDagRun(client, withPool(dagA, name), { taskQueue, params: { pool: name, ms: 10 } });
      let sawWaiting = false;
      while (!sawWaiting && Date.now() - signalled < leaseMs - 1_000) {
        sawWaiting = task(await run.handle.query<DagRunStatus>('status'), 'work').state === 'scheduled';
        await sleep(100);
      }
      assert.ok(sawWaiting, "the pooled task waits while the stuck holder's lease lasts");
      assert.equal((await waitForRun(run.handle)).state, 'success');
      const workStart = spans.get(name)?.[0]?.start ?? 0;
      assert.ok(workStart - signalled >= leaseMs - 200, `the task started ${workStart - signalled} ms after the grant`);
      assert.equal((await getPool(client, name)).used, 0, "the stuck holder's slot came back");

      // Enough grants that the pool's history passes its limit and it continues as new with its holders: a few
      // with a lease that outlasts the continue-as-new, the rest released once it has happened.
      const firstRunId = (await pool.describe()).runId;
      const holders = 700;
      const lasting = 5;
      // Long enough to outlast the grants, the continue-as-new and the releases on a loaded CI machine (~10 s
      // here, over 23 s in one CI run).
      const lastingLeaseMs = 60_000;
      await setPool(client, name, { slots: holders, taskQueue });
      const grantedFrom = Date.now();
      for (let i = 0; i < lasting; i++) await acquire(`lasting-${i}`, lastingLeaseMs);
      await mapLimit(
        Array.from({ length: holders - lasting }, (_, i) => i),
        16,
        (i) => acquire(`many-${i}`, 600_000),
      );
      const usedWhen = async (done: (used: number) => boolean, ms: number) => {
        let used = (await getPool(client, name)).used;
        for (const deadline = Date.now() + ms; !done(used) && Date.now() < deadline;) {
          await sleep(200);
          used = (await getPool(client, name)).used;
        }
        return used;
      };
      assert.equal(await usedWhen((used) => used === holders, 30_000), holders, 'every request was granted');
      // The pool looks at its history's length when something changes. Requests that arrive one workflow task
      // each (a loaded machine) pass the limit during the grants, and it continues as new there; requests that
      // arrive in batches pass it with the grants' signals, recorded after them, and one release makes it go.
      if ((await pool.describe()).runId === firstRunId) {
        let events = 0;
        for (let i = 0; i < 100 && (events = (await pool.describe()).historyLength) <= 2_000; i++) await sleep(100);
        assert.ok(events > 2_000, `the pool's history has ${events} events`);
      }
      await pool.signal(releaseLockSignal, { requestId: 'many-0' });
      for (let i = 0; i < 100 && (await pool.describe()).runId === firstRunId; i++) await sleep(100);
      assert.notEqual((await pool.describe()).runId, firstRunId, 'the pool continued as new');
      assert.equal((await getPool(client, name)).used, holders - 1, 'the other holders kept their slots');
      await mapLimit(
        Array.from({ length: holders - lasting - 1 }, (_, i) => i + 1),
        16,
        (i) => pool.signal(releaseLockSignal, { requestId: `many-${i}` }),
      );
      assert.equal(await usedWhen((used) => used <= lasting, 30_000), lasting, 'released slots came back');
      assert.ok(Date.now() - grantedFrom < lastingLeaseMs - 5_000, 'the lasting leases are still running');
      // Nobody releases the lasting ones: their leases, carried over, end them.
      assert.equal(await usedWhen((used) => used === 0, lastingLeaseMs + 30_000), 0, 'the carried-over leases ended');
      assert.ok(Date.now() - grantedFrom >= lastingLeaseMs - 1_000, 'not before the leases ran out');

      letGo.add(requester.runId);
      assert.equal((await waitForRun(requester.handle)).state, 'success');
      assert.equal((await cli(['pools', 'delete', name])).code, 0);
    });
  });

  it('pool definitions are checked, naming the DAG and the task', () => {
    const bad = (extra: Record<string, unknown>) => () =>
      defineDag({
        id: 'bad_pool',
        params: { out: { type: 'string' } },
        tasks: [
          { id: 'list', activity: 'x' },
          { id: 'p', activity: 'x', upstream: ['list'], ...extra },
        ],
      });
    assert.throws(bad({ pool: 'has space' }), /DAG 'bad_pool', task 'p': pool: a pool name must start with a letter/);
    assert.throws(bad({ poolSlots: 2 }), /DAG 'bad_pool', task 'p': poolSlots needs a pool/);
    assert.throws(bad({ pool: 'p', map: { over: 'list' } }), /task 'p': a mapped task cannot take a pool/);
    assert.throws(bad({ pool: 'p', exclusiveBy: 'out' }), /task 'p': a task cannot have both a pool and exclusiveBy/);
    const ok = defineDag({ id: 'good_pool', tasks: [{ id: 'p', activity: 'x', pool: 's3_heavy', poolSlots: 2 }] });
    assert.deepEqual(ok.tasks[0]!.pool, { name: 's3_heavy', slots: 2 });
  });
});
