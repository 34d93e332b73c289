/**
 * `localActivity: true` (issue 10 item 6): a task's attempts run as Temporal local activities on the runner's
 * worker. Against the real dev server: outputs, retries driven by the runner, timeouts, what the histories hold,
 * and the definition errors for options a local activity cannot honour.
 */
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, it } from 'node:test';
import { Context } from '@temporalio/activity';
import type { Client } from '@temporalio/client';
import type { temporal } from '@temporalio/proto';
import { triggerDagRun, waitForRun } from '../client/runs';
import { defineDag } from '../core/dag';
import { DagDefinitionError } from '../core/errors';
import type { ActivityRecord, DagRunStatus, TaskContext } from '../core/types';
import { withTestWorker } from './support';

/** Attempts per (run, map index) of the flaky activity. */
const attemptsOf = new Map<string, number>();

const activities: ActivityRecord = {
  localItems: async (ctx: TaskContext) => Array.from({ length: Number(ctx.params.count) }, (_, i) => i * 10),
  // Heartbeats (ignored for a local activity) and reads its context, as task code written for activities does.
  localTimesTwo: async (ctx: TaskContext) => {
    Context.current().heartbeat({ item: ctx.item });
    return { item: ctx.item as number, doubled: (ctx.item as number) * 2, local: Context.current().info.isLocal };
  },
  localFlaky: async (ctx: TaskContext) => {
    const key = `${ctx.runId}/${ctx.mapIndex}`;
    const n = (attemptsOf.get(key) ?? 0) + 1;
    attemptsOf.set(key, n);
    if (n === 1 && (ctx.mapIndex ?? 0) % 3 === 0) throw new Error(`first attempt of item ${ctx.mapIndex} fails`);
    return { attempt: ctx.attempt, calls: n };
  },
  localSlow: async () => {
    await sleep(5_000);
    return 'too late';
  },
  localSum: async (ctx: TaskContext) =>
    (ctx.upstream.double as { doubled: number }[]).reduce((sum, x) => sum + x.doubled, 0),
};

const mapDag = defineDag({
  id: 'test_local_map',
  maxActiveTasks: 8,
  params: { count: { type: 'integer', default: 40 } },
  tasks: [
    { id: 'items', activity: 'localItems' },
    { id: 'double', activity: 'localTimesTwo', map: { over: 'items' }, localActivity: true },
    { id: 'sum', activity: 'localSum', upstream: ['double'], localActivity: true },
  ],
});

const flakyDag = defineDag({
  id: 'test_local_flaky',
  params: { count: { type: 'integer', default: 9 } },
  tasks: [
    { id: 'items', activity: 'localItems' },
    {
      id: 'flaky',
      activity: 'localFlaky',
      map: { over: 'items', maxActive: 4 },
      localActivity: true,
      retries: 1,
      retryDelay: '100ms',
    },
  ],
});

const slowDag = defineDag({
  id: 'test_local_slow',
  params: { count: { type: 'integer', default: 1 } },
  tasks: [
    { id: 'slow', activity: 'localSlow', localActivity: true, executionTimeout: '1s' },
    { id: 'after', activity: 'localItems', upstream: ['slow'], triggerRule: 'all_done' },
  ],
});

type HistoryEvent = temporal.api.history.v1.IHistoryEvent;

/** Every event of a run's runner and of each child workflow it started (map batches). */
async function runEvents(client: Client, workflowId: string): Promise<HistoryEvent[]> {
  const events = (await client.workflow.getHandle(workflowId).fetchHistory()).events ?? [];
  const children = events.flatMap((e) => e.childWorkflowExecutionStartedEventAttributes?.workflowExecution ?? []);
  for (const child of children) {
    events.push(...((await client.workflow.getHandle(child.workflowId!, child.runId!).fetchHistory()).events ?? []));
  }
  return events;
}

const activityTypes = (events: HistoryEvent[]) =>
  events.flatMap((e) => e.activityTaskScheduledEventAttributes?.activityType?.name ?? []);
const localMarkers = (events: HistoryEvent[]) =>
  events.filter((e) => e.markerRecordedEventAttributes?.markerName === 'core_local_activity').length;
const task = (status: DagRunStatus, id: string) => status.tasks.find((t) => t.taskId === id)!;

void describe('local activities', () => {
  it('runs a mapped task and an unmapped one as local activities: same outputs, markers instead of activity tasks', async () => {
    await withTestWorker({ dags: [mapDag], activities }, async ({ client, taskQueue }) => {
      for (const count of [40, 260]) {
        // 260 items: more than one map batch, so the instances run in child workflows too.
        const run = await triggerDagRun(client, mapDag, { taskQueue, params: { count } });
        const status = await waitForRun(run.handle);
        assert.equal(status.state, 'success', JSON.stringify(status.tasks));
        const outputs = status.outputs.double as { item: number; doubled: number; local: boolean }[];
        assert.equal(outputs.length, count);
        outputs.forEach((o, i) => assert.deepEqual(o, { item: i * 10, doubled: i * 20, local: true }));
        assert.equal(status.outputs.sum, (20 * count * (count - 1)) / 2);
        assert.deepEqual(task(status, 'double').mapped?.states, { success: count });

        const events = await runEvents(client, run.handle.workflowId);
        // Only `items` went through the task queue; every instance of `double` and `sum` is a marker.
        assert.deepEqual(activityTypes(events), ['localItems']);
        assert.equal(localMarkers(events), count + 1);
      }
    });
  });

  it('retries a failed attempt from the runner, as for activities: attempt counts in the outputs and the status', async () => {
    await withTestWorker({ dags: [flakyDag], activities }, async ({ client, taskQueue }) => {
      const run = await triggerDagRun(client, flakyDag, { taskQueue, params: { count: 9 } });
      const status = await waitForRun(run.handle);
      assert.equal(status.state, 'success', JSON.stringify(status.tasks));
      const outputs = status.outputs.flaky as { attempt: number; calls: number }[];
      // Items 0, 3 and 6 failed once and succeeded at attempt 2; the others at attempt 1.
      outputs.forEach((o, i) => assert.deepEqual(o, i % 3 === 0 ? { attempt: 2, calls: 2 } : { attempt: 1, calls: 1 }));
      assert.equal(task(status, 'flaky').attempts, 2);
      const events = await runEvents(client, run.handle.workflowId);
      assert.equal(localMarkers(events), 9 + 3);
    });
  });

  it('fails an attempt that outlives its executionTimeout; downstream follows its trigger rule', async () => {
    await withTestWorker({ dags: [slowDag], activities }, async ({ client, taskQueue }) => {
      const run = await triggerDagRun(client, slowDag, { taskQueue, params: {} });
      const status = await waitForRun(run.handle);
      assert.equal(status.state, 'failed');
      const slow = task(status, 'slow');
      assert.equal(slow.state, 'failed');
      assert.match(slow.error?.message ?? '', /execution timeout/);
      assert.equal(task(status, 'after').state, 'success');
    });
  });

  it('refuses options a local activity cannot honour, naming the DAG, the task and each option', () => {
    const define = (over: Record<string, unknown>, defaults: Record<string, unknown> = {}) =>
      defineDag({
        id: 'test_local_bad',
        defaults,
        tasks: [
          { id: 'first', activity: 'a' },
          { id: 'second', activity: 'b', upstream: ['first'], localActivity: true, ...over },
        ],
      });
    assert.throws(
      () => define({ heartbeatTimeout: '10s' }),
      (err: Error) =>
        err instanceof DagDefinitionError &&
        /test_local_bad/.test(err.message) &&
        /second/.test(err.message) &&
        /cannot take heartbeatTimeout$/.test(err.message),
    );
    assert.throws(
      () => define({}, { taskQueue: 'big-memory' }),
      (err: Error) =>
        err instanceof DagDefinitionError && /cannot take taskQueue \(from the DAG's defaults\)/.test(err.message),
    );
    assert.throws(
      () => define({ preferWorkerOf: 'first', sensor: { every: '1s', timeout: '1m' } }),
      (err: Error) => err instanceof DagDefinitionError && /cannot take preferWorkerOf, sensor/.test(err.message),
    );
    assert.throws(
      () => define({ localActivity: 'yes' }),
      (err: Error) => err instanceof DagDefinitionError && /localActivity/.test(err.message),
    );
    // Allowed with everything else: retries, timeouts, pools, trigger rules.
    const ok = define({ retries: 2, executionTimeout: '30s', pool: 'p', triggerRule: 'all_done' });
    assert.equal(ok.tasks[1]!.localActivity, true);
    assert.equal(ok.tasks[0]!.localActivity, undefined);
  });
});
