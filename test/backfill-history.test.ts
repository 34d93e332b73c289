/**
 * A backfill of any length stays within Temporal's history limits (issue 12, item 9): it continues as new every
 * `runsPerExecution` runs, carrying its progress, and the status query keeps answering across executions.
 *
 * A 10,000-interval backfill of a do-nothing DAG takes far longer than a test may on this dev server (about
 * 11 runs a second), so the property is shown with BACKFILL_INTERVALS intervals and a small threshold, and the
 * default threshold is checked by arithmetic on the events per run measured here.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import type { Client } from '@temporalio/client';
import { getBackfillStatus, listBackfills, planBackfill, startBackfill } from '../client/backfill';
import { runQueries } from '../worker/framework-activities';
import { RUNS_PER_EXECUTION } from '../workflows/backfill';
import type { BackfillStatus } from '../workflows/backfill';
import { allTestDags, createTestActivities, dailyDag, EventLog } from './fixtures/test-dags';
import { withTestWorker } from './support';

/** Temporal warns at 10,240 events in one history (and terminates the workflow at 51,200). */
const HISTORY_EVENT_WARN_LIMIT = 10_240;
const BACKFILL_INTERVALS = 600;
const RUNS_PER_EXECUTION_IN_TEST = 100;

interface ExecutionHistory {
  runId: string;
  startTime: Date;
  events: number;
  runsStarted: number;
}

/** Every execution of a workflow id (oldest first) with its history's event count and the runs it started. */
async function executionHistories(client: Client, workflowId: string): Promise<ExecutionHistory[]> {
  const executions: { runId: string; startTime: Date }[] = [];
  for await (const wf of client.workflow.list({ query: `WorkflowId = '${workflowId}'` })) {
    executions.push({ runId: wf.runId, startTime: wf.startTime });
  }
  executions.sort((a, b) => a.startTime.getTime() - b.startTime.getTime());
  const out: ExecutionHistory[] = [];
  for (const { runId, startTime } of executions) {
    const history = await client.workflow.getHandle(workflowId, runId).fetchHistory();
    const events = history.events ?? [];
    out.push({
      runId,
      startTime,
      events: events.length,
      runsStarted: events.filter((e) => e.startChildWorkflowExecutionInitiatedEventAttributes).length,
    });
  }
  return out;
}

void describe('backfill history', () => {
  it('finds runs with one visibility query over the DAG and its logical dates', () => {
    const planned = planBackfill(dailyDag, '1990-01-01', '1990-12-31');
    const queries = runQueries(
      planned.map((p) => p.runId),
      dailyDag.id,
    );
    assert.deepEqual(queries, [
      "WorkflowType = 'dagRun' AND DagId = 'test_daily' AND LogicalDate BETWEEN " +
        "'1990-01-01T23:59:59.000Z' AND '1991-01-01T00:00:01.000Z'",
    ]);
    // Ids that are not all one DAG's: WorkflowId IN (...), 100 ids a page.
    const mixed = runQueries(Array.from({ length: 250 }, (_, i) => `run-${i}`));
    assert.equal(mixed.length, 3);
    assert.match(mixed[0]!, /^WorkflowType = 'dagRun' AND WorkflowId IN \('run-0', 'run-1', .*'run-99'\)$/);
  });

  it(`continues as new every ${RUNS_PER_EXECUTION_IN_TEST} runs over ${BACKFILL_INTERVALS} intervals, each history far below ${HISTORY_EVENT_WARN_LIMIT} events`, async () => {
    await withTestWorker(
      { dags: allTestDags, activities: createTestActivities(new EventLog()), maxConcurrentActivities: 64 },
      async ({ client, taskQueue }) => {
        const from = '1991-01-01';
        const planned = planBackfill(dailyDag, from, '1992-08-22');
        assert.equal(planned.length, BACKFILL_INTERVALS);
        const startedAt = Date.now();
        const { handle, backfillId } = await startBackfill(client, dailyDag, {
          from,
          to: '1992-08-22',
          maxActive: 16,
          reprocess: 'completed',
          taskQueue,
          params: { sleepMs: 0 },
          runsPerExecution: RUNS_PER_EXECUTION_IN_TEST,
        });

        // The status query answers from a later execution, with the earlier executions' runs in it.
        let later: BackfillStatus | undefined;
        while (!later) {
          const status = await getBackfillStatus(client, backfillId).catch(() => undefined);
          if (status && status.execution >= 2) later = status;
          else await delay(200);
        }
        const done = later.runs.filter((r) => r.state === 'success').length;
        assert.ok(done >= RUNS_PER_EXECUTION_IN_TEST, `${done} runs carried as done into execution ${later.execution}`);
        assert.equal(later.runs.length, BACKFILL_INTERVALS);
        assert.ok(later.runs.every((r) => r.state !== 'cancelled' && r.state !== 'failed'));

        const result = await handle.result();
        const seconds = (Date.now() - startedAt) / 1000;
        assert.equal(result.state, 'completed');
        assert.deepEqual(
          result.runs.map((r) => r.state),
          Array(BACKFILL_INTERVALS).fill('success'),
        );
        assert.deepEqual(
          result.runs.map((r) => r.runId),
          planned.map((p) => p.runId),
        );
        assert.ok(result.peakActive <= 16 && result.peakActive >= 2, `peak ${result.peakActive}`);

        // Every interval's run ran exactly once, though the backfill went through several executions.
        const histories = await executionHistories(client, backfillId);
        assert.equal(histories.length, BACKFILL_INTERVALS / RUNS_PER_EXECUTION_IN_TEST);
        assert.equal(result.execution, histories.length);
        assert.deepEqual(
          histories.map((h) => h.runsStarted),
          Array(histories.length).fill(RUNS_PER_EXECUTION_IN_TEST),
        );
        // Per run, counting each execution's fixed events (start, lookup, completion) against its runs: an upper bound.
        const perRun = Math.max(...histories.map((h) => h.events / h.runsStarted));
        const longest = Math.max(...histories.map((h) => h.events));
        const atDefault = Math.ceil(RUNS_PER_EXECUTION * perRun);
        console.log(
          `backfill of ${BACKFILL_INTERVALS} runs: ${seconds.toFixed(1)} s (${(BACKFILL_INTERVALS / seconds).toFixed(1)} runs/s), ` +
            `${histories.length} executions of ${histories.map((h) => h.events).join(', ')} events, ` +
            `${perRun.toFixed(2)} events per run; at the default ${RUNS_PER_EXECUTION} runs per execution: <= ${atDefault} events`,
        );
        assert.ok(longest < HISTORY_EVENT_WARN_LIMIT / 4, `longest history ${longest} events`);
        assert.ok(perRun <= 9, `${perRun} events per run: more than workflows/backfill.ts's worst case`);
        assert.ok(
          atDefault < HISTORY_EVENT_WARN_LIMIT / 2,
          `${RUNS_PER_EXECUTION} runs x ${perRun.toFixed(2)} events per run = ${atDefault} events`,
        );

        // `backfill list` shows the backfill once, started when its first execution started, completed.
        const listed = (await listBackfills(client, dailyDag.id)).filter((b) => b.backfillId === backfillId);
        assert.equal(listed.length, 1);
        assert.equal(listed[0]!.status, 'COMPLETED');
        assert.equal(listed[0]!.startTime, histories[0]!.startTime.toISOString());

        // A second backfill finds all 600 runs (one visibility query) and skips them.
        const second = await startBackfill(client, dailyDag, { from, to: '1992-08-22', maxActive: 16, taskQueue });
        const again = await second.handle.result();
        assert.deepEqual(
          again.runs.map((r) => r.state),
          Array(BACKFILL_INTERVALS).fill('skipped'),
        );
        assert.equal(again.execution, 1);
      },
    );
  });
});
