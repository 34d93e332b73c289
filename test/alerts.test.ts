import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { sleep } from '@temporalio/activity';
import { triggerDagRun, waitForRun } from '../client/runs';
import { defineDag } from '../core/dag';
import { DagDefinitionError, NonRetryableTaskError } from '../core/errors';
import type { TaskAlert, TaskContext } from '../core/types';
import { withTestWorker } from './support';

/** A Slack-like webhook on a free port: records each POSTed JSON body. */
class WebhookServer {
  readonly received: { text: string; alert: TaskAlert }[] = [];
  private server?: Server;
  url = '';
  async start(): Promise<void> {
    this.server = createServer((req, res) => {
      let body = '';
      req.on('data', (chunk: Buffer) => (body += chunk.toString()));
      req.on('end', () => {
        this.received.push(JSON.parse(body) as { text: string; alert: TaskAlert });
        res.writeHead(200).end('ok');
      });
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    const { port } = this.server.address() as AddressInfo;
    // The path stands for the secret a real webhook URL holds.
    this.url = `http://127.0.0.1:${port}/services/T000/B000/secret-token-4f1c`;
  }
  of(event: TaskAlert['event']) {
    return this.received.filter((r) => r.alert.event === event);
  }
  async stop(): Promise<void> {
    await new Promise<void>((resolve) => this.server?.close(() => resolve()));
  }
}

const failingDag = defineDag({
  id: 'alerts_failing',
  onFailure: 'tempoflowWebhook',
  onSuccess: 'tempoflowWebhook',
  tasks: [
    { id: 'ok', activity: 'alertsOk' },
    // A callback that throws: recorded in the run's status, the run still ends as it would.
    { id: 'broken', activity: 'alertsBroken', upstream: ['ok'], onFailure: ['alertsThrowingCallback'] },
  ],
});

const retryingDag = defineDag({
  id: 'alerts_retrying',
  onSuccess: 'tempoflowWebhook',
  tasks: [{ id: 'flaky', activity: 'alertsFlaky', retries: 3, retryDelay: '100ms', onRetry: 'tempoflowWebhook' }],
});

// More items than run inline: one batch child workflow runs them and drives their retries.
const MAPPED_ITEMS = 260;
const bigMapDag = defineDag({
  id: 'alerts_big_map',
  maxActiveTasks: 20,
  tasks: [
    { id: 'range', activity: 'alertsRange' },
    {
      id: 'each',
      activity: 'alertsFlakyItem',
      map: { over: 'range', maxActive: 20 },
      retries: 1,
      retryDelay: '50ms',
      onRetry: ['tempoflowWebhook', 'alertsThrowingCallback'],
    },
  ],
});

const lateDag = defineDag({
  id: 'alerts_late',
  sla: '1s',
  onSlaMiss: 'tempoflowWebhook',
  tasks: [{ id: 'slow', activity: 'alertsSlow' }],
});

const activities = {
  alertsOk: async () => 'ok',
  alertsBroken: async () => {
    throw new NonRetryableTaskError('the input is broken', 'BadInput');
  },
  alertsThrowingCallback: async () => {
    throw new Error('pager service is down');
  },
  alertsFlaky: async (ctx: TaskContext) => {
    if (ctx.attempt <= 2) throw new Error(`flaky failure on attempt ${ctx.attempt}`);
    return { attempt: ctx.attempt };
  },
  alertsRange: async () => Array.from({ length: MAPPED_ITEMS }, (_, i) => i),
  alertsFlakyItem: async (ctx: TaskContext) => {
    if ((ctx.item === 7 || ctx.item === 257) && ctx.attempt === 1) throw new Error(`item ${ctx.item} failed once`);
    return ctx.item ?? null;
  },
  alertsSlow: async () => {
    await sleep(3000);
    return 'done';
  },
};

describe('alerts', () => {
  const webhook = new WebhookServer();
  const saved = { url: process.env.TEMPOFLOW_WEBHOOK_URL, ui: process.env.TEMPORAL_UI_URL };
  before(async () => {
    await webhook.start();
    // The worker's environment: the only place the webhook URL lives.
    process.env.TEMPOFLOW_WEBHOOK_URL = webhook.url;
    process.env.TEMPORAL_UI_URL = 'http://ui.example:8233/';
  });
  after(async () => {
    for (const [name, value] of [
      ['TEMPOFLOW_WEBHOOK_URL', saved.url],
      ['TEMPORAL_UI_URL', saved.ui],
    ] as const) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
    await webhook.stop();
  });

  it('a failed run fires onFailure once; a failing callback is recorded and fails nothing; no URL in history', async () => {
    await withTestWorker({ dags: [failingDag], activities }, async ({ client, taskQueue }) => {
      const run = await triggerDagRun(client, failingDag, { taskQueue });
      const status = await waitForRun(run.handle);
      assert.equal(status.state, 'failed');
      const failures = webhook.of('failure').filter((r) => r.alert.runId === run.runId);
      assert.equal(failures.length, 1, 'one failure alert for the run');
      const [failure] = failures;
      assert.equal(failure!.alert.dagId, 'alerts_failing');
      assert.equal(failure!.alert.taskId, undefined, "the run's own alert names no task");
      assert.equal(failure!.alert.state, 'failed');
      assert.match(failure!.alert.error ?? '', /task 'broken' failed: the input is broken/);
      assert.equal(
        failure!.alert.url,
        `http://ui.example:8233/namespaces/default/workflows/${encodeURIComponent(run.runId)}`,
      );
      assert.match(failure!.text, /alerts_failing.*failed/);
      assert.equal(webhook.of('success').filter((r) => r.alert.runId === run.runId).length, 0);
      assert.deepEqual(status.alerts?.errors, [
        { event: 'failure', taskId: 'broken', callback: 'alertsThrowingCallback', message: 'pager service is down' },
      ]);
      assert.equal(status.alerts?.sent, 2);

      const history = JSON.stringify(await run.handle.fetchHistory());
      assert.ok(history.includes('tempoflowAlert'), 'the history holds the alert activities');
      assert.ok(!history.includes('secret-token-4f1c'), 'the webhook URL is not in the history');
      assert.ok(!history.includes(new URL(webhook.url).host), "the webhook's address is not in the history");
    });
  });

  it('a retried task fires onRetry once per retry, then the run succeeds', async () => {
    await withTestWorker({ dags: [retryingDag], activities }, async ({ client, taskQueue }) => {
      const run = await triggerDagRun(client, retryingDag, { taskQueue });
      const status = await waitForRun(run.handle);
      assert.equal(status.state, 'success');
      const retries = webhook.of('retry').filter((r) => r.alert.runId === run.runId);
      assert.deepEqual(retries.map((r) => [r.alert.taskId, r.alert.attempt, r.alert.error]).sort(), [
        ['flaky', 1, 'flaky failure on attempt 1'],
        ['flaky', 2, 'flaky failure on attempt 2'],
      ]);
      assert.equal(webhook.of('success').filter((r) => r.alert.runId === run.runId).length, 1);
      assert.equal(webhook.of('failure').filter((r) => r.alert.runId === run.runId).length, 0);
    });
  });

  it("a large map's batch fires onRetry for each retried instance, and the run records its callbacks' errors", async () => {
    await withTestWorker({ dags: [bigMapDag], activities }, async ({ client, taskQueue }) => {
      const run = await triggerDagRun(client, bigMapDag, { taskQueue });
      const status = await waitForRun(run.handle);
      assert.equal(status.state, 'success');
      assert.equal(status.tasks.find((t) => t.taskId === 'each')?.mapped?.total, MAPPED_ITEMS);
      const retries = webhook.of('retry').filter((r) => r.alert.runId === run.runId);
      assert.deepEqual(
        retries
          .map((r) => [r.alert.taskId, r.alert.mapIndex, r.alert.attempt, r.alert.state, r.alert.error])
          .sort((a, b) => Number(a[1]) - Number(b[1])),
        [
          ['each', 7, 1, 'up_for_retry', 'item 7 failed once'],
          ['each', 257, 1, 'up_for_retry', 'item 257 failed once'],
        ],
      );
      assert.equal(retries[0]!.alert.dagId, 'alerts_big_map');
      assert.equal(retries[0]!.alert.logicalDate, status.logicalDate);
      // Both alerts came from the batch's child workflow; the run's status counts them and keeps their errors.
      assert.equal(status.alerts?.sent, 2);
      assert.deepEqual(status.alerts?.errors, [
        { event: 'retry', taskId: 'each', callback: 'alertsThrowingCallback', message: 'pager service is down' },
        { event: 'retry', taskId: 'each', callback: 'alertsThrowingCallback', message: 'pager service is down' },
      ]);
    });
  });

  it('a late run fires its SLA alert once and still succeeds', async () => {
    await withTestWorker({ dags: [lateDag], activities }, async ({ client, taskQueue }) => {
      const run = await triggerDagRun(client, lateDag, { taskQueue });
      const status = await waitForRun(run.handle);
      assert.equal(status.state, 'success');
      const late = webhook.of('sla_miss').filter((r) => r.alert.runId === run.runId);
      assert.equal(late.length, 1);
      assert.equal(late[0]!.alert.state, 'running');
      assert.ok(status.alerts?.slaMissedAt, 'the status records when the SLA was missed');
      assert.ok(Date.parse(status.alerts.slaMissedAt) - Date.parse(status.startedAt) >= 1000);
    });
  });

  it('rejects callbacks that are not activity names, and onSlaMiss without an sla', () => {
    assert.throws(
      () => defineDag({ id: 'bad_alerts', tasks: [{ id: 't', activity: 'x', onFailure: 'not a name' }] }),
      (err: Error) => err instanceof DagDefinitionError && /DAG 'bad_alerts', task 't': onFailure/.test(err.message),
    );
    assert.throws(
      () => defineDag({ id: 'bad_sla', onSlaMiss: 'tempoflowWebhook', tasks: [{ id: 't', activity: 'x' }] }),
      /DAG 'bad_sla': onSlaMiss needs an sla/,
    );
    assert.throws(
      () => defineDag({ id: 'bad_sla2', sla: 'soon', tasks: [{ id: 't', activity: 'x' }] }),
      /DAG 'bad_sla2': .*sla/,
    );
  });
});
