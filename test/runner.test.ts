import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { WorkflowFailedError } from '@temporalio/client';
import type { Client } from '@temporalio/client';
import { defaultPayloadConverter } from '@temporalio/common';
import { defineDag } from '../core/dag';
import { NonRetryableTaskError, ParamValidationError } from '../core/errors';
import type { DagRunStatus, TaskState } from '../core/types';
import { listRuns, triggerDagRun, waitForRun } from '../client/runs';
import { statusQuery } from '../workflows/definitions';
import { LEAN_BATCH_PATCH } from '../workflows/map-batch';
import { DEFAULT_WORKFLOW_STACK_TRACE_FRAMES } from '../worker/settings';
import {
  bigOutputDag,
  diamondDag,
  EventLog,
  mapDag,
  retryDag,
  slowDag,
  testDags,
  timeoutDag,
  triggerRuleDag,
  TRIGGER_RULE_CASES,
  createTestActivities,
} from './fixtures/test-dags';
import { withTestWorker } from './support';

const ruleCases = TRIGGER_RULE_CASES.map(triggerRuleDag);
const dags = [...testDags, ...ruleCases];

function task(status: DagRunStatus, id: string) {
  const found = status.tasks.find((t) => t.taskId === id);
  assert.ok(found, `no task '${id}' in the run status`);
  return found;
}

async function historyLength(client: Client, workflowId: string): Promise<number> {
  const history = await client.workflow.getHandle(workflowId).fetchHistory();
  return history.events?.length ?? 0;
}

describe('runner workflow', () => {
  it('runs a diamond: both branches of the fan-out at once, the fan-in after both', async () => {
    const log = new EventLog();
    await withTestWorker({ dags, activities: createTestActivities(log) }, async ({ client, taskQueue }) => {
      const run = await triggerDagRun(client, diamondDag, { taskQueue, params: { sleepMs: 500 } });
      const status = await waitForRun(run.handle);
      assert.equal(status.state, 'success');
      const [a] = log.of('a', 'end');
      const [bStart] = log.of('b');
      const [cStart] = log.of('c');
      const [bEnd] = log.of('b', 'end');
      const [cEnd] = log.of('c', 'end');
      const [dStart] = log.of('d');
      assert.ok(a && bStart && cStart && bEnd && cEnd && dStart, 'every task ran');
      assert.ok(bStart.at >= a.at && cStart.at >= a.at, 'b and c start after a ends');
      assert.ok(bStart.at < cEnd.at && cStart.at < bEnd.at, 'b and c overlap (fan-out runs in parallel)');
      assert.ok(dStart.at >= Math.max(bEnd.at, cEnd.at), 'd starts after both b and c end');
      // The fan-in task receives both upstream outputs.
      assert.deepEqual(status.outputs.d, { b: 'b', c: 'c' });
      assert.equal(log.of('a').length, 1);
    });
  });

  it('applies each trigger rule as Airflow does', async () => {
    const expected: Record<string, Record<string, TaskState>> = {
      mixed: {
        all_success: 'upstream_failed',
        all_done: 'success',
        all_failed: 'skipped',
        one_success: 'success',
        one_failed: 'success',
        none_failed: 'upstream_failed',
        none_failed_min_one_success: 'upstream_failed',
        always: 'success',
      },
      success: {
        all_success: 'success',
        all_done: 'success',
        all_failed: 'skipped',
        one_success: 'success',
        one_failed: 'skipped',
        none_failed: 'success',
        none_failed_min_one_success: 'success',
        always: 'success',
      },
      failed: {
        all_success: 'upstream_failed',
        all_done: 'success',
        all_failed: 'success',
        one_success: 'upstream_failed',
        one_failed: 'success',
        none_failed: 'upstream_failed',
        none_failed_min_one_success: 'upstream_failed',
        always: 'success',
      },
      skipped: {
        all_success: 'skipped',
        all_done: 'success',
        all_failed: 'skipped',
        one_success: 'skipped',
        one_failed: 'skipped',
        none_failed: 'success',
        none_failed_min_one_success: 'skipped',
        always: 'success',
      },
    };
    await withTestWorker({ dags, activities: createTestActivities(new EventLog()) }, async ({ client, taskQueue }) => {
      const statuses = await Promise.all(
        ruleCases.map(async (dag) => waitForRun((await triggerDagRun(client, dag, { taskQueue })).handle)),
      );
      for (const [i, upstreamCase] of TRIGGER_RULE_CASES.entries()) {
        const status = statuses[i]!;
        const actual = Object.fromEntries(
          status.tasks.filter((t) => t.taskId.startsWith('rule_')).map((t) => [t.taskId.slice(5), t.state]),
        );
        assert.deepEqual(actual, expected[upstreamCase], `upstream tasks ${upstreamCase}`);
        const anyFailed = status.tasks.some((t) => t.state === 'failed' || t.state === 'upstream_failed');
        assert.equal(status.state, anyFailed ? 'failed' : 'success', `run state, upstream tasks ${upstreamCase}`);
      }
    });
  });

  it('retries a task that fails twice, and fails a non-retryable error at once', async () => {
    const log = new EventLog();
    await withTestWorker({ dags, activities: createTestActivities(log) }, async ({ client, taskQueue }) => {
      const run = await triggerDagRun(client, retryDag, { taskQueue, params: { failures: 2 } });
      const failure = await run.handle.result().then(
        () => undefined,
        (err: unknown) => err,
      );
      assert.ok(failure instanceof WorkflowFailedError, 'the run fails because of the non-retryable task');
      assert.match(String(failure.cause?.message), /task 'non_retryable' failed: bad input in non_retryable/);
      const status = await waitForRun(run.handle);
      assert.equal(status.state, 'failed');
      const flaky = task(status, 'flaky');
      assert.equal(flaky.state, 'success');
      assert.equal(flaky.attempts, 3);
      assert.equal(log.of('flaky').length, 3);
      assert.deepEqual(status.outputs.flaky, { attempt: 3 });
      assert.equal(task(status, 'after_flaky').state, 'success');
      const bad = task(status, 'non_retryable');
      assert.equal(bad.state, 'failed');
      assert.equal(bad.attempts, 1, 'no retries after a non-retryable error although 5 were allowed');
      assert.deepEqual(bad.error, { message: 'bad input in non_retryable', type: 'BadInput' });
      assert.equal(log.of('non_retryable').length, 1);
      assert.equal(task(status, 'after_non_retryable').state, 'upstream_failed');
      assert.equal(log.of('after_non_retryable').length, 0);
    });
  });

  it('fails an attempt that exceeds its execution timeout, after its retries', async () => {
    await withTestWorker({ dags, activities: createTestActivities(new EventLog()) }, async ({ client, taskQueue }) => {
      const run = await triggerDagRun(client, timeoutDag, { taskQueue });
      const status = await waitForRun(run.handle);
      const slow = task(status, 'too_slow');
      assert.equal(status.state, 'failed');
      assert.equal(slow.state, 'failed');
      assert.equal(slow.attempts, 2);
      assert.equal(slow.error?.type, 'Timeout');
      assert.match(slow.error?.message ?? '', /execution timeout/);
    });
  });

  it('cancels a running run: the running activity is cancelled, the rest marked', async () => {
    const log = new EventLog();
    await withTestWorker({ dags, activities: createTestActivities(log) }, async ({ client, taskQueue }) => {
      const run = await triggerDagRun(client, slowDag, { taskQueue });
      for (let i = 0; i < 100 && log.of('slow').length === 0; i++) await delay(100);
      assert.equal(log.of('slow').length, 1, 'the slow task started');
      await run.handle.cancel();
      const failure = await run.handle.result().then(
        () => undefined,
        (err: unknown) => err,
      );
      assert.ok(failure instanceof WorkflowFailedError);
      assert.equal(failure.cause?.name, 'CancelledFailure');
      for (let i = 0; i < 100 && log.of('slow', 'cancelled').length === 0; i++) await delay(100);
      assert.equal(log.of('slow', 'cancelled').length, 1, 'the activity saw the cancellation through its heartbeat');
      assert.equal(log.of('slow', 'end').length, 0);
      const status = await run.handle.query(statusQuery);
      assert.equal(status.state, 'cancelled');
      assert.equal(task(status, 'first').state, 'success');
      assert.equal(task(status, 'slow').state, 'failed');
      assert.equal(task(status, 'slow').error?.type, 'Cancelled');
      assert.equal(task(status, 'after').state, 'skipped');
      assert.equal((await run.handle.describe()).status.name, 'CANCELLED');
    });
  });

  it("keeps workflow stack traces to workflowStackTraceFrames (the Web UI's Stack Trace), not the process's", async () => {
    const before = Error.stackTraceLimit;
    /** Frames of the longest stack the Web UI would show for a run blocked on its slow task. */
    const deepestStack = async (workflowStackTraceFrames?: number) => {
      const log = new EventLog();
      const options = { dags, activities: createTestActivities(log), workflowStackTraceFrames };
      return withTestWorker(options, async ({ client, taskQueue }) => {
        const run = await triggerDagRun(client, slowDag, { taskQueue, params: { sleepMs: 2_000 } });
        for (let i = 0; i < 100 && log.of('slow').length === 0; i++) await delay(100);
        assert.equal(log.of('slow').length, 1, 'the slow task started');
        const stacks = await run.handle.query<string>('__stack_trace');
        await run.handle.cancel();
        // The run ends (its activity cancelled) before the worker shuts down.
        await run.handle.result().catch(() => undefined);
        return Math.max(...stacks.split('\n\n').map((stack) => stack.match(/^\s+at /gm)?.length ?? 0));
      });
    };
    const full = await deepestStack(30);
    assert.ok(full > 2, `the runner's stack has ${full} frames`);
    assert.ok((await deepestStack(2)) <= 2);
    assert.equal(await deepestStack(), DEFAULT_WORKFLOW_STACK_TRACE_FRAMES, 'by default, no frames');
    assert.equal(Error.stackTraceLimit, before, "the test process's own limit is unchanged");
    await assert.rejects(deepestStack(-1), /workflowStackTraceFrames must be a whole number of frames, not -1/);
  });

  it('refuses bad params before any run starts', async () => {
    await withTestWorker({ dags, activities: createTestActivities(new EventLog()) }, async ({ client, taskQueue }) => {
      const logicalDate = '2031-01-01T00:00:00.000Z';
      await assert.rejects(
        triggerDagRun(client, retryDag, { taskQueue, params: { failures: 'many' }, logicalDate }),
        (err: unknown) =>
          err instanceof ParamValidationError &&
          /DAG 'test_retry': param 'failures' must be an integer/.test(err.message),
      );
      await assert.rejects(client.workflow.getHandle(`test_retry__${logicalDate}`).describe(), /not found/i);
    });
  });

  it('fails a task whose output is over the size limit, telling the author to pass a URI', async () => {
    await withTestWorker({ dags, activities: createTestActivities(new EventLog()) }, async ({ client, taskQueue }) => {
      const status = await waitForRun((await triggerDagRun(client, bigOutputDag, { taskQueue })).handle);
      const big = task(status, 'big');
      assert.equal(big.state, 'failed');
      assert.equal(big.error?.type, 'TaskOutputTooLarge');
      assert.match(
        big.error?.message ?? '',
        /over the 256 KiB limit: write the data to object storage and return its URI/,
      );
    });
  });

  it('maps over 5,000 items in batches, with no history over 10,240 events', async () => {
    await withTestWorker(
      { dags, activities: createTestActivities(new EventLog()), maxConcurrentActivities: 50 },
      async ({ client, taskQueue }) => {
        const run = await triggerDagRun(client, mapDag, { taskQueue, params: { count: 5000 } });
        const status = await waitForRun(run.handle);
        assert.equal(status.state, 'success');
        const doubled = status.outputs.double as number[];
        assert.equal(doubled.length, 5000);
        assert.ok(
          doubled.every((v, i) => v === i * 2),
          'outputs in item order',
        );
        const mapped = task(status, 'double').mapped;
        assert.deepEqual(mapped?.states, { success: 5000 });
        const history = await client.workflow.getHandle(run.runId).fetchHistory();
        const children = (history.events ?? [])
          .map((e) => e.childWorkflowExecutionStartedEventAttributes?.workflowExecution?.workflowId)
          .filter((id): id is string => !!id);
        assert.equal(children.length, 10, '5,000 items in batches of 500');
        const lengths = [
          history.events!.length,
          ...(await Promise.all(children.map((id) => historyLength(client, id)))),
        ];
        for (const length of lengths) assert.ok(length <= 10_240, `a history has ${length} events`);
      },
    );
  });

  it('runs a batch of a large map at most maxActive at once, retrying and collecting failed instances', async () => {
    // 260 items: more than run inline, so one batch child workflow runs them.
    const faultsDag = defineDag({
      id: 'test_map_batch_faults',
      params: { count: { type: 'integer', default: 260 } },
      maxActiveTasks: 20,
      tasks: [
        { id: 'range', activity: 'testRange' },
        {
          id: 'check',
          activity: 'testBatchItem',
          map: { over: 'range', maxActive: 20 },
          retries: 1,
          retryDelay: '50ms',
          executionTimeout: '30s',
        },
      ],
    });
    const attempts = new Map<number, number[]>();
    let running = 0;
    let mostAtOnce = 0;
    const activities = {
      ...createTestActivities(new EventLog()),
      testBatchItem: async (ctx: { item?: unknown; attempt: number }) => {
        const item = ctx.item as number;
        attempts.set(item, [...(attempts.get(item) ?? []), ctx.attempt]);
        mostAtOnce = Math.max(mostAtOnce, ++running);
        try {
          await delay(5);
          if (item === 230) throw new NonRetryableTaskError(`item ${item} is bad`, 'BadItem');
          if (item % 50 === 7 && ctx.attempt === 1) throw new Error(`item ${item} failed once`);
          return item;
        } finally {
          running--;
        }
      },
    };
    await withTestWorker(
      { dags: [...dags, faultsDag], activities, maxConcurrentActivities: 50 },
      async ({ client, taskQueue }) => {
        const run = await triggerDagRun(client, faultsDag, { taskQueue });
        const status = await waitForRun(run.handle);
        assert.equal(status.state, 'failed');
        const check = task(status, 'check');
        assert.deepEqual(check.mapped?.states, { success: 259, failed: 1 });
        assert.deepEqual(
          check.mapped?.errors.map((e) => [e.mapIndex, e.error.type]),
          [[230, 'BadItem']],
        );
        assert.equal(check.attempts, 2, 'the retried instances made two attempts');
        assert.deepEqual(
          [...attempts].filter(([, a]) => a.length > 1).sort(([a], [b]) => a - b),
          [7, 57, 107, 157, 207, 257].map((item) => [item, [1, 2]]),
          'each instance that failed once ran again, and only those',
        );
        assert.deepEqual(attempts.get(230), [1], 'a non-retryable failure is not retried');
        assert.equal(attempts.size, 260, 'every instance ran');
        assert.ok(mostAtOnce <= 20, `at most maxActive at once (saw ${mostAtOnce})`);
        assert.ok(mostAtOnce > 1, 'instances ran side by side');
        // The batch ran through the lean loop: its history carries that patch's marker.
        const batch = await client.workflow.getHandle(`${run.runId}.check.batch-0`).fetchHistory();
        const patches = (batch.events ?? []).flatMap((e) =>
          e.markerRecordedEventAttributes?.markerName === 'core_patch'
            ? Object.values(e.markerRecordedEventAttributes.details ?? {}).flatMap((d) =>
                (d.payloads ?? []).map((payload) => defaultPayloadConverter.fromPayload(payload)),
              )
            : [],
        );
        assert.ok(
          patches.some((p) => (p as { id?: string }).id === LEAN_BATCH_PATCH),
          `batch history marks ${LEAN_BATCH_PATCH}: ${JSON.stringify(patches)}`,
        );
      },
    );
  });

  it('makes runs findable by DagId and names each activity by its task', async () => {
    await withTestWorker({ dags, activities: createTestActivities(new EventLog()) }, async ({ client, taskQueue }) => {
      const run = await triggerDagRun(client, diamondDag, { taskQueue, params: { sleepMs: 10 } });
      await waitForRun(run.handle);
      let found: Awaited<ReturnType<typeof listRuns>> = [];
      for (let i = 0; i < 50 && !found.some((r) => r.runId === run.runId && r.state === 'success'); i++) {
        found = await listRuns(client, { dagId: diamondDag.id });
        await delay(200);
      }
      const listed = found.find((r) => r.runId === run.runId);
      assert.equal(listed?.state, 'success');
      assert.equal(listed?.logicalDate, run.input.logicalDate);
      const history = await run.handle.fetchHistory();
      const summaries = (history.events ?? [])
        .filter((e) => e.activityTaskScheduledEventAttributes)
        .map((e) => defaultPayloadConverter.fromPayload<string>(e.userMetadata!.summary!));
      assert.deepEqual(summaries.sort(), ['task a', 'task b', 'task c', 'task d']);
      const description = await run.handle.describe();
      assert.equal(await description.staticSummary(), `test_diamond · logical date ${run.input.logicalDate}`);
      // The Web UI's "current details": the task states as a Markdown table.
      const metadata = await run.handle.query<{ currentDetails?: string }>('__temporal_workflow_metadata');
      assert.match(metadata.currentDetails ?? '', /\| task \| state \| attempts \| error \|/);
      for (const id of ['a', 'b', 'c', 'd'])
        assert.match(metadata.currentDetails ?? '', new RegExp(`\\| ${id} \\| success \\| 1 \\|`));
    });
  });
});
