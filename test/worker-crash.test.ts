import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { it } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { Client, Connection } from '@temporalio/client';
import { triggerDagRun, waitForRun } from '../client/runs';
import { crashDag, crashLocalDag } from './fixtures/test-dags';
import type { TaskEvent } from './fixtures/test-dags';
import type { DagSnapshot } from '../core/types';
import { testServices } from './services';
import { startWorkerProcess, workflowBundle } from './support';

const startWorker = (env: NodeJS.ProcessEnv) => startWorkerProcess('worker-process.ts', env);

/**
 * Runs `dag` on a worker process, kills that worker (SIGKILL) once task `slow` has started, and lets a second
 * worker finish the run: its final status, and the task starts the workers logged.
 */
async function runKilledDuringSlowTask(dag: DagSnapshot) {
  const { temporal } = await testServices();
  const dir = mkdtempSync(join(tmpdir(), 'tempoflow-crash-'));
  const bundlePath = join(dir, 'workflow-bundle.js');
  writeFileSync(bundlePath, (await workflowBundle()).code);
  const eventLog = join(dir, 'events.jsonl');
  const env = {
    TEMPORAL_ADDRESS: temporal.address,
    TEST_TASK_QUEUE: `crash-${randomUUID()}`,
    TEST_EVENT_LOG: eventLog,
    TEST_WORKFLOW_BUNDLE: bundlePath,
  };
  const events = (): TaskEvent[] =>
    existsSync(eventLog)
      ? readFileSync(eventLog, 'utf8')
          .trim()
          .split('\n')
          .map((line) => JSON.parse(line) as TaskEvent)
      : [];
  const starts = (taskId: string) => events().filter((e) => e.taskId === taskId && e.event === 'start');
  const connection = await Connection.connect({ address: temporal.address });
  const client = new Client({ connection, namespace: temporal.namespace });
  let second: ChildProcess | undefined;
  const first = await startWorker(env);
  try {
    const run = await triggerDagRun(client, dag, { taskQueue: env.TEST_TASK_QUEUE });
    for (let i = 0; i < 200 && starts('slow').length === 0; i++) await delay(100);
    assert.equal(starts('slow').length, 1, 'the slow task started on the first worker');
    first.kill('SIGKILL');
    await new Promise((resolve) => first.once('exit', resolve));

    second = await startWorker(env);
    return { status: await waitForRun(run.handle), starts };
  } finally {
    first.kill('SIGKILL');
    second?.kill('SIGTERM');
    await connection.close();
  }
}

it('a run survives its worker being killed mid-task, without re-running finished tasks', async () => {
  const { status, starts } = await runKilledDuringSlowTask(crashDag);
  assert.equal(status.state, 'success');
  assert.equal(starts('first').length, 1, 'the finished task was not run again');
  assert.deepEqual(
    starts('slow').map((e) => e.attempt),
    [1, 2],
    'the interrupted task ran again as its second attempt',
  );
  assert.equal(starts('after').length, 1);
  const slow = status.tasks.find((t) => t.taskId === 'slow');
  assert.equal(slow?.attempts, 2);
});

it('a run survives its worker being killed during a local activity: it runs again on the next worker', async () => {
  // The killed worker's workflow task times out; the next worker replays the run and, as no result of the local
  // activity was recorded, runs it again (local activities are at least once, like activities).
  const { status, starts } = await runKilledDuringSlowTask(crashLocalDag);
  assert.equal(status.state, 'success');
  assert.equal(starts('first').length, 1, 'the finished activity was not run again');
  assert.equal(starts('slow').length, 2, 'the interrupted local activity ran again');
  assert.equal(starts('after').length, 1);
  assert.equal(status.tasks.find((t) => t.taskId === 'slow')?.state, 'success');
});
