import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { Context, log, sleep } from '@temporalio/activity';
import { triggerDagRun, waitForRun } from '../client/runs';
import { defineDag } from '../core/dag';
import type { TaskContext } from '../core/types';
import { createS3Client } from '../storage/s3-client';
import { createStore } from '../storage/store';
import { resolveLogLocation } from '../worker/log-location';
import { TaskLogs } from '../worker/task-logs';
import { createTestBucket, s3EnvForTests } from './services';
import { cliInProcess as cli, withTestWorker } from './support';

/** Runs `fn` with `vars` set in process.env (the worker's store reads its S3 settings there), then restores it. */
async function withProcessEnv<T>(vars: Record<string, string | undefined>, fn: () => Promise<T>): Promise<T> {
  const before = Object.fromEntries(Object.keys(vars).map((k) => [k, process.env[k]]));
  Object.assign(process.env, vars);
  try {
    return await fn();
  } finally {
    for (const [k, v] of Object.entries(before)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
}

const SECRET = 'not-a-real-secret-7d1f2a';

const logsDag = defineDag({
  id: 'logs_flaky',
  tasks: [{ id: 'chatty', activity: 'logsChatty', retries: 1, retryDelay: '100ms' }],
});

const followDag = defineDag({
  id: 'logs_follow',
  tasks: [{ id: 'talker', activity: 'logsTalker' }],
});

const activities = {
  /** Logs lines, fails its first attempt, succeeds the second. */
  logsChatty: async (ctx: TaskContext) => {
    log.info(`reading input (attempt ${ctx.attempt})`, { file: 'events.json' });
    Context.current().heartbeat({ done: 1 });
    log.warn('a credential must never be kept', { key: process.env.TEMPOFLOW_TEST_FAKE_SECRET ?? '' });
    if (ctx.attempt === 1) throw new Error('input not ready yet');
    log.info('wrote 3 rows');
    return { rows: 3 };
  },
  /** Talks for about 4 s, a line every 200 ms. */
  logsTalker: async () => {
    for (let i = 1; i <= 20; i++) {
      log.info(`step ${i}`);
      await sleep(200);
    }
    return 'done';
  },
};

/** Checks what `runs logs` shows of a run of `logsDag` at `location`. */
async function checkLogsOfFlakyRun(location: string) {
  await withTestWorker({ dags: [logsDag], activities, logLocation: location }, async ({ client, taskQueue }) => {
    const run = await triggerDagRun(client, logsDag, { taskQueue });
    assert.equal((await waitForRun(run.handle)).state, 'success');

    const all = await cli(['runs', 'logs', run.runId, '--log-location', location]);
    assert.equal(all.code, 0, all.stderr);
    const lines = all.stdout.trim().split('\n');
    const expected = [
      /chatty#1 attempt 1 of task chatty started/,
      /INFO +chatty#1 reading input \(attempt 1\) \{"file":"events.json"\}/,
      /DEBUG +chatty#1 heartbeat \{"progress":\{"done":1\}\}/,
      /WARN +chatty#1 a credential must never be kept/,
      /ERROR +chatty#1 attempt 1 failed after [\d.]+s: input not ready yet/,
      /chatty#2 attempt 2 of task chatty started/,
      /chatty#2 reading input \(attempt 2\)/,
      /chatty#2 heartbeat/,
      /chatty#2 a credential must never be kept/,
      /chatty#2 wrote 3 rows/,
      /chatty#2 attempt 2 succeeded in [\d.]+s/,
    ];
    assert.equal(lines.length, expected.length, all.stdout + all.stderr);
    expected.forEach((re, i) => assert.match(lines[i]!, re));
    assert.ok(!all.stdout.includes(SECRET), 'the secret is masked');
    assert.match(all.stdout, /"key":"\*\*\*"/);

    const second = await cli(['runs', 'logs', run.runId, '--log-location', location, '--attempt', '2']);
    assert.equal(second.code, 0, second.stderr);
    assert.equal(second.stdout.trim().split('\n').length, 6);
    assert.doesNotMatch(second.stdout, /#1 /);

    const json = await cli(['runs', 'logs', run.runId, '--log-location', location, '--task', 'chatty', '--json']);
    const entries = JSON.parse(json.stdout) as { attempt: number; src: string }[];
    assert.deepEqual(
      entries.map((e) => e.attempt),
      [1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2],
    );
    assert.equal(entries.filter((e) => e.src === 'tempoflow').length, 6);
  });
}

describe('task logs', () => {
  const saved = process.env.TEMPOFLOW_TEST_FAKE_SECRET;
  process.env.TEMPOFLOW_TEST_FAKE_SECRET = SECRET;
  const folders: string[] = [];
  const tempFolder = () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'tempoflow-logs-'));
    folders.push(dir);
    return dir;
  };
  after(() => {
    if (saved === undefined) delete process.env.TEMPOFLOW_TEST_FAKE_SECRET;
    else process.env.TEMPOFLOW_TEST_FAKE_SECRET = saved;
    for (const dir of folders) rmSync(dir, { recursive: true, force: true });
  });

  it('keeps both attempts of a retried task in a local folder, in chunks per attempt', async () => {
    const dir = tempFolder();
    await checkLogsOfFlakyRun(dir);
    const [runFolder] = readdirSync(dir);
    const attempts = readdirSync(path.join(dir, runFolder!, 'chatty', '-'));
    assert.deepEqual(attempts, ['attempt-001', 'attempt-002']);
    // A short attempt is flushed once, at its end: one chunk, not one object per line.
    assert.equal(readdirSync(path.join(dir, runFolder!, 'chatty', '-', 'attempt-001')).length, 1);
  });

  it('keeps them under an S3 prefix (numbered chunk objects)', async () => {
    const bucket = await createTestBucket('task-logs');
    const s3Env = await s3EnvForTests();
    await withProcessEnv(s3Env, () => checkLogsOfFlakyRun(`s3://${bucket}/logs`));
  });

  it('--follow shows the lines of a running task and stops when it ends', async () => {
    const dir = tempFolder();
    await withTestWorker({ dags: [followDag], activities, logLocation: dir }, async ({ client, taskQueue }) => {
      const run = await triggerDagRun(client, followDag, { taskQueue });
      await delay(500);
      const following = cli(['runs', 'logs', run.runId, '--log-location', dir, '--task', 'talker', '--follow']);
      let followEnded = false;
      void following.then(() => (followEnded = true));
      // Lines are flushed every 2 s while the task runs: some arrive before it ends.
      await delay(2800);
      const status = await client.workflow.getHandle(run.runId).describe();
      assert.equal(status.status.name, 'RUNNING', 'the task still runs');
      assert.equal(followEnded, false, '--follow is still following');
      const result = await following;
      assert.equal(result.code, 0, result.stderr + result.stdout);
      const lines = result.stdout.trim().split('\n');
      assert.match(lines[0]!, /talker#1 attempt 1 of task talker started/);
      for (let i = 1; i <= 20; i++) assert.match(lines[i]!, new RegExp(`talker#1 step ${i}$`));
      assert.match(lines[21]!, /attempt 1 succeeded/);
      assert.equal((await waitForRun(run.handle)).state, 'success');
    });
  });

  it('a worker whose log location cannot be written to does not start, naming it; a good one is left clean', async () => {
    const s3Env = await s3EnvForTests();
    const store = createStore({ s3Client: createS3Client({ env: s3Env }) });
    const missing = new TaskLogs('s3://no-such-bucket-tempoflow/logs', store);
    await assert.rejects(missing.checkWritable(), (err: Error) => {
      assert.match(err.message, /^cannot write task logs to s3:\/\/no-such-bucket-tempoflow\/logs: .*does not exist/);
      return true;
    });
    const bucket = await createTestBucket('task-logs-probe');
    await new TaskLogs(`s3://${bucket}/logs`, store).checkWritable();
    assert.deepEqual(await store.list(`s3://${bucket}/`), [], 'the probe is deleted');
    // A worker does not start with it, rather than run tasks whose lines go nowhere (each flush retried).
    await withProcessEnv(s3Env, () =>
      assert.rejects(
        withTestWorker({ dags: [logsDag], activities, logLocation: 's3://no-such-bucket-tempoflow/logs' }, () =>
          assert.fail('the worker started'),
        ),
        /cannot write task logs to s3:\/\/no-such-bucket-tempoflow\/logs/,
      ),
    );
  });

  it('resolves the log location from the flag, then the environment; a bad one is named', () => {
    assert.equal(resolveLogLocation(undefined, {}), undefined);
    assert.equal(resolveLogLocation(undefined, { TEMPOFLOW_LOG_LOCATION: 's3://b/p' }), 's3://b/p');
    assert.equal(resolveLogLocation('./logs', { TEMPOFLOW_LOG_LOCATION: 's3://b/p' }), './logs');
    assert.throws(() => resolveLogLocation('gs://b/p', {}), /--log-location 'gs:\/\/b\/p' is not a log location/);
    assert.throws(() => resolveLogLocation(undefined, { TEMPOFLOW_LOG_LOCATION: 's3://' }), /TEMPOFLOW_LOG_LOCATION/);
  });
});
