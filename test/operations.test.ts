import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { planBackfill, startBackfill } from '../client/backfill';
import { listRuns, retryRun, waitForRun, triggerDagRun } from '../client/runs';
import { runStateOf } from '../core/run-states';
import { createSchedule, deleteSchedule, describeSchedule, pauseSchedule } from '../client/schedules';
import { intervalsBetween } from '../core/schedule';
import type { DagRunStatus } from '../core/types';
import type { dagRun } from '../workflows';
import {
  allTestDags,
  createTestActivities,
  dailyDag,
  EventLog,
  exclusiveDag,
  retryableDag,
  slowDag,
} from './fixtures/test-dags';
import { withTestWorker } from './support';

function maxOverlap(runs: { startedAt: string; endedAt?: string }[]): number {
  const edges = runs.flatMap((r) => [
    { at: Date.parse(r.startedAt), delta: 1 },
    { at: Date.parse(r.endedAt!), delta: -1 },
  ]);
  edges.sort((a, b) => a.at - b.at || a.delta - b.delta);
  let current = 0;
  let peak = 0;
  for (const edge of edges) peak = Math.max(peak, (current += edge.delta));
  return peak;
}

describe('intervals', () => {
  it('gives daily intervals whose start lies in [from, to], logical date at their end', () => {
    const planned = planBackfill(dailyDag, '2018-11-01', '2018-11-30');
    assert.equal(planned.length, 30);
    assert.deepEqual(planned[0]!.dataInterval, { start: '2018-11-01T00:00:00.000Z', end: '2018-11-02T00:00:00.000Z' });
    assert.equal(planned[0]!.logicalDate, '2018-11-02T00:00:00.000Z');
    assert.deepEqual(planned[29]!.dataInterval, { start: '2018-11-30T00:00:00.000Z', end: '2018-12-01T00:00:00.000Z' });
    assert.equal(planned[0]!.runId, 'test_daily__2018-11-02T00:00:00.000Z');
    const hourly = intervalsBetween(
      { everyMs: 3_600_000 },
      new Date('2020-01-01T00:00:00Z'),
      new Date('2020-01-01T05:00:00Z'),
    );
    assert.equal(hourly.length, 6);
  });
});

describe('run states', () => {
  it('tells a run state from the execution status and the recorded DagRunState', () => {
    assert.equal(runStateOf('RUNNING', 'queued'), 'queued');
    assert.equal(runStateOf('RUNNING', 'running'), 'running');
    assert.equal(runStateOf('RUNNING', undefined), 'running');
    assert.equal(runStateOf('FAILED', 'failed'), 'failed');
    assert.equal(runStateOf('COMPLETED', 'success'), 'success');
    assert.equal(runStateOf('CANCELLED', 'running'), 'cancelled');
    // Ended outside the runner's control: the recorded state is stale.
    assert.equal(runStateOf('TERMINATED', 'running'), 'terminated');
    assert.equal(runStateOf('TIMED_OUT', 'queued'), 'timed_out');
  });
});

describe('operations', () => {
  it('lists a run no worker picked up as queued, skips it in a backfill, and lists it terminated', async () => {
    await withTestWorker(
      { dags: allTestDags, activities: createTestActivities(new EventLog()) },
      async ({ client, taskQueue }) => {
        const [day1, day2] = planBackfill(dailyDag, '1990-01-01', '1990-01-02');
        // A task queue no worker polls: the run stays queued.
        const queued = await triggerDagRun(client, dailyDag, {
          taskQueue: `${taskQueue}-nobody`,
          logicalDate: day1!.logicalDate,
          dataInterval: day1!.dataInterval,
        });
        const listed = async () => {
          for (let i = 0; i < 50; i++) {
            const found = (await listRuns(client, { dagId: dailyDag.id })).find((r) => r.runId === queued.runId);
            if (found) return found;
            await delay(200);
          }
          assert.fail(`run ${queued.runId} not listed`);
        };
        assert.equal((await listed()).state, 'queued');
        const backfilled = await startBackfill(client, dailyDag, {
          from: '1990-01-01',
          to: '1990-01-02',
          reprocess: 'failed',
          taskQueue,
          params: { sleepMs: 10 },
        });
        const result = await backfilled.handle.result();
        assert.deepEqual(
          result.runs.map((r) => [r.runId, r.state]),
          [
            [day1!.runId, 'skipped'],
            [day2!.runId, 'success'],
          ],
        );
        assert.match(result.runs[0]!.note ?? '', /already running/);
        await queued.handle.terminate('test');
        let state = '';
        for (let i = 0; i < 50 && state !== 'terminated'; i++) {
          state = (await listed()).state;
          if (state !== 'terminated') await delay(200);
        }
        assert.equal(state, 'terminated');
      },
    );
  });

  it('backfills 30 days with at most 4 runs at once, and skips finished days on a second backfill', async () => {
    await withTestWorker(
      { dags: allTestDags, activities: createTestActivities(new EventLog()) },
      async ({ client, taskQueue }) => {
        const first = await startBackfill(client, dailyDag, {
          from: '2018-11-01',
          to: '2018-11-30',
          maxActive: 4,
          // Run every day even if an earlier test run against this server did (runs are keyed by logical date).
          reprocess: 'completed',
          taskQueue,
          params: { sleepMs: 300 },
        });
        const result = await first.handle.result();
        assert.equal(result.runs.length, 30);
        assert.deepEqual(
          result.runs.map((r) => r.state),
          Array(30).fill('success'),
        );
        assert.ok(result.peakActive <= 4 && result.peakActive >= 2, `peak ${result.peakActive}`);
        const statuses: DagRunStatus[] = await Promise.all(
          result.runs.map((r) => waitForRun(client.workflow.getHandle(r.runId))),
        );
        const peak = maxOverlap(statuses);
        assert.ok(peak <= 4, `${peak} runs overlapped`);
        assert.deepEqual(statuses[0]!.dataInterval, {
          start: '2018-11-01T00:00:00.000Z',
          end: '2018-11-02T00:00:00.000Z',
        });

        const second = await startBackfill(client, dailyDag, {
          from: '2018-11-01',
          to: '2018-11-30',
          maxActive: 4,
          taskQueue,
          reprocess: 'none',
        });
        const again = await second.handle.result();
        assert.deepEqual(
          again.runs.map((r) => r.state),
          Array(30).fill('skipped'),
        );
        assert.match(again.runs[0]!.note ?? '', /already success/);
      },
    );
  });

  it('serializes an exclusive task across 8 concurrent runs without losing an update', async () => {
    const log = new EventLog();
    await withTestWorker(
      { dags: allTestDags, activities: createTestActivities(log) },
      async ({ client, taskQueue }) => {
        const target = `lock-test-${Date.now()}`;
        const runs = await Promise.all(
          Array.from({ length: 8 }, (_, i) =>
            triggerDagRun(client, exclusiveDag, {
              taskQueue,
              params: { target, sleepMs: 300 },
              logicalDate: new Date(Date.now() + i).toISOString(),
            }),
          ),
        );
        const statuses = await Promise.all(runs.map((r) => waitForRun(r.handle)));
        assert.deepEqual(
          statuses.map((s) => s.state),
          Array(8).fill('success'),
        );
        assert.equal(log.counters.get(target), 8, 'no update was lost');
        const sections = log.of('bump').map((start) => ({
          start: start.at,
          end: log.events.find(
            (e) => e.event === 'end' && e.taskId === 'bump' && e.at >= start.at && e.attempt === start.attempt,
          )!.at,
        }));
        const prepares = log.of('prepare').map((e) => e.at);
        assert.ok(Math.max(...prepares) - Math.min(...prepares) < 1000, 'the non-exclusive tasks ran in parallel');
        assert.equal(
          maxOverlap(
            statuses
              .map((s) => s.tasks.find((t) => t.taskId === 'bump')!)
              .map((t) => ({ startedAt: t.startedAt!, endedAt: t.endedAt! })),
          ),
          1,
        );
        assert.equal(sections.length, 8);
      },
    );
  });

  it('retries only the failed tasks and their downstream, reusing the rest', async () => {
    const log = new EventLog();
    await withTestWorker(
      { dags: allTestDags, activities: createTestActivities(log) },
      async ({ client, taskQueue }) => {
        log.failing.add('b');
        const run = await triggerDagRun(client, retryableDag, { taskQueue });
        const failed = await waitForRun(run.handle);
        assert.equal(failed.state, 'failed');
        assert.equal(failed.tasks.find((t) => t.taskId === 'a')?.state, 'success');
        assert.equal(failed.tasks.find((t) => t.taskId === 'b')?.state, 'failed');
        assert.equal(failed.tasks.find((t) => t.taskId === 'c')?.state, 'upstream_failed');

        log.failing.clear();
        const retried = await retryRun(client, run.runId, { taskQueue });
        assert.deepEqual(retried.rerun, ['b', 'c']);
        const status = await waitForRun(retried.handle);
        assert.equal(status.state, 'success');
        assert.equal(log.of('a').length, 1, 'a succeeded before and was not run again');
        assert.equal(log.of('d').length, 1, 'd succeeded before and was not run again');
        assert.equal(log.of('b').length, 2);
        assert.equal(log.of('c').length, 1);
        // b received a's output from the first execution.
        assert.deepEqual((status.outputs.b as { upstream: unknown }).upstream, { a: { task: 'a', upstream: {} } });

        const named = await retryRun(client, run.runId, { taskQueue, tasks: ['a'] });
        assert.deepEqual(named.rerun, ['a', 'b', 'c']);
        await waitForRun(named.handle);
        assert.equal(log.of('a').length, 2);
        assert.equal(log.of('d').length, 1);
      },
    );
  });

  it('a scheduled run and a trigger of the same logical date are one run', async () => {
    await withTestWorker(
      { dags: allTestDags, activities: createTestActivities(new EventLog()) },
      async ({ client, taskQueue }) => {
        const scheduleId = `test-one-run-${Date.now()}`;
        const params = { sleepMs: 10 };
        await createSchedule(client, dailyDag, { scheduleId, every: '3s', taskQueue, params, paused: true });
        try {
          // Triggered by hand before the schedule gets to that time.
          const [, byHand, afterIt] = (await describeSchedule(client, scheduleId)).nextRuns;
          assert.ok(byHand && afterIt);
          const manual = await triggerDagRun(client, dailyDag, { taskQueue, logicalDate: byHand, params });
          assert.equal((await waitForRun(manual.handle)).state, 'success');
          await client.schedule.getHandle(scheduleId).unpause();
          let details = await describeSchedule(client, scheduleId);
          for (let i = 0; i < 150 && !details.recentRuns.some((r) => r.scheduledAt === afterIt); i++) {
            await delay(200);
            details = await describeSchedule(client, scheduleId);
          }
          await client.schedule.getHandle(scheduleId).pause();
          const actions = (await client.schedule.getHandle(scheduleId).describe()).info.recentActions;
          const actionAt = (at: string) => actions.find((a) => a.scheduledAt.toISOString() === at);
          const reported = await client.workflow
            .getHandle<typeof dagRun>(actionAt(byHand)!.action.workflow.workflowId)
            .result();
          assert.equal(reported.existing, true, 'the schedule reported the triggered run');
          assert.equal(reported.runId, manual.runId);
          assert.equal(reported.state, 'success');
          assert.deepEqual(reported.tasks, [], 'nothing ran again');

          // The schedule's own run has the DAG run id of its time: triggering that date reports it.
          const scheduled = await client.workflow
            .getHandle<typeof dagRun>(actionAt(afterIt)!.action.workflow.workflowId)
            .result();
          assert.equal(scheduled.existing, undefined);
          assert.equal(scheduled.runId, `${dailyDag.id}__${afterIt}`);
          assert.equal(scheduled.state, 'success');
          const again = await triggerDagRun(client, dailyDag, { taskQueue, logicalDate: afterIt, params });
          assert.equal(again.created, false);
          assert.equal(again.runId, scheduled.runId);
          // A one-second range, not `=`: the dev server's SQLite visibility compares datetimes as differently
          // formatted strings, so `=` and `<=` on the same instant never match.
          const nextSecond = new Date(Date.parse(afterIt) + 1000).toISOString();
          const query = `DagId = '${dailyDag.id}' AND LogicalDate >= '${afterIt}' AND LogicalDate < '${nextSecond}'`;
          const found: string[] = [];
          for (let i = 0; i < 50 && found.length === 0; i++) {
            for await (const w of client.workflow.list({ query })) found.push(w.workflowId);
            if (found.length === 0) await delay(200); // visibility lags a moment behind
          }
          assert.deepEqual(
            found,
            [scheduled.runId],
            'the run is findable by DagId and LogicalDate; its launcher is not',
          );
        } finally {
          await deleteSchedule(client, scheduleId);
        }
      },
    );
  });

  it('runs a schedule with the right logical dates and intervals, and honours pause and overlap', async () => {
    await withTestWorker(
      { dags: allTestDags, activities: createTestActivities(new EventLog()) },
      async ({ client, taskQueue }) => {
        const scheduleId = `test-schedule-${Date.now()}`;
        const cronId = `${scheduleId}-cron`;
        await createSchedule(client, dailyDag, {
          scheduleId: cronId,
          cron: '30 2 * * 1-5',
          start: '2030-01-01T00:00:00Z',
          taskQueue,
          params: { sleepMs: 10 },
          paused: true,
        });
        try {
          // The spec as it was given, not Temporal's calendar form of the cron.
          assert.equal(
            (await describeSchedule(client, cronId)).spec,
            'cron 30 2 * * 1-5, from 2030-01-01T00:00:00.000Z',
          );
        } finally {
          await deleteSchedule(client, cronId);
        }
        await createSchedule(client, dailyDag, { scheduleId, every: '2s', taskQueue, params: { sleepMs: 10 } });
        try {
          let details = await describeSchedule(client, scheduleId);
          assert.equal(details.spec, 'every 2s');
          for (let i = 0; i < 100 && details.recentRuns.filter((r) => r.state === 'success').length < 2; i++) {
            await delay(200);
            details = await describeSchedule(client, scheduleId);
          }
          const done = details.recentRuns.filter((r) => r.state === 'success');
          assert.ok(done.length >= 2, 'two scheduled runs finished');
          for (const recent of done) {
            const status = await waitForRun(client.workflow.getHandle(recent.runId));
            assert.equal(status.logicalDate, recent.scheduledAt, 'logical date is the scheduled time');
            assert.deepEqual(status.dataInterval, {
              start: new Date(Date.parse(recent.scheduledAt) - 2000).toISOString(),
              end: recent.scheduledAt,
            });
          }
          await pauseSchedule(client, scheduleId, 'paused by the test');
          const paused = await describeSchedule(client, scheduleId);
          assert.equal(paused.paused, true);
          assert.equal(paused.note, 'paused by the test');
          const countAtPause = paused.recentRuns.length;
          await delay(4500);
          assert.equal(
            (await describeSchedule(client, scheduleId)).recentRuns.length,
            countAtPause,
            'no runs while paused',
          );
        } finally {
          await deleteSchedule(client, scheduleId);
        }

        // Overlap 'skip': while a long run is going, the schedule's next actions are skipped.
        const overlapId = `test-overlap-${Date.now()}`;
        await createSchedule(client, slowDag, {
          scheduleId: overlapId,
          every: '1s',
          overlap: 'skip',
          taskQueue,
          params: { sleepMs: 5000 },
        });
        try {
          await delay(4500);
          const handle = client.schedule.getHandle(overlapId);
          const description = await handle.describe();
          assert.equal(description.info.runningActions.length, 1, 'one run at a time');
          assert.ok(
            description.info.numActionsSkippedOverlap >= 2,
            `skipped ${description.info.numActionsSkippedOverlap}`,
          );
          for (const action of description.info.runningActions) {
            await client.workflow.getHandle(action.workflow.workflowId).cancel();
          }
        } finally {
          await deleteSchedule(client, overlapId);
        }
      },
    );
  });
});
