/**
 * sparkify_etl end to end as users run it: on the Temporal dev server with S3 through the real S3 server,
 * by the CLI (`trigger --local`) and by a worker; and no credential anywhere in the run's history.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { createActivities } from '../activities';
import { generateSparkify } from '../activities/sparkify/generate';
import type { GenerateExpectations } from '../activities/sparkify/generate';
import { readPublished } from '../activities/sparkify/read-table';
import { createStore } from '../storage/store';
import { triggerDagRun, waitForRun } from '../client/runs';
import type { DagRunStatus } from '../core/types';
import { getDag } from '../dags';
import { createTestBucket, s3ClientForTests, s3EnvForTests, testServices } from './services';
import { withTestWorker } from './support';

const root = join(import.meta.dirname, '..');

async function generated(bucket: string): Promise<GenerateExpectations> {
  const s3Client = await s3ClientForTests();
  try {
    return await generateSparkify({
      out: `s3://${bucket}/input`,
      songs: 120,
      events: 4000,
      days: 5,
      seed: 7,
      duplicates: 5,
      store: createStore({ s3Client }),
    });
  } finally {
    s3Client.destroy();
  }
}

function tsxCli(
  args: string[],
  env: Record<string, string>,
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(root, 'bin/tempoflow.js'), ...args], {
      cwd: root,
      env: { ...process.env, ...env, NO_COLOR: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.once('error', reject);
    child.once('exit', (code) => resolve({ code: code ?? 1, stdout, stderr }));
  });
}

function assertCounts(rows: Record<string, number> | undefined, expected: GenerateExpectations): void {
  assert.deepEqual(rows, {
    songs: expected.songs,
    artists: expected.artists,
    users: expected.users,
    time: expected.startTimes,
    songplays: expected.nextSongEvents,
  });
}

describe('sparkify_etl end to end through S3', () => {
  it('`tempoflow trigger sparkify_etl --local` reads and writes the lake on S3', async () => {
    const bucket = await createTestBucket('e2e-cli');
    const expected = await generated(bucket);
    const { code, stdout, stderr } = await tsxCli(
      [
        'trigger',
        'sparkify_etl',
        '--local',
        '--json',
        '-p',
        `input=s3://${bucket}/input`,
        '-p',
        `output=s3://${bucket}/lake`,
      ],
      await s3EnvForTests(),
    );
    assert.equal(code, 0, stderr);
    const status = JSON.parse(stdout) as DagRunStatus;
    assert.equal(status.state, 'success');
    assertCounts((status.outputs.build_tables as { rows: Record<string, number> }).rows, expected);
    const s3Client = await s3ClientForTests();
    try {
      const songplays = await readPublished(createStore({ s3Client }), `s3://${bucket}/lake`, 'songplays');
      assert.equal(songplays.length, expected.nextSongEvents, 'the published songplays table, read back from S3');
      assert.equal(songplays.filter((r) => r.song_id !== null).length, expected.matchedPlays);
    } finally {
      s3Client.destroy();
    }
  });

  it('a run on a worker leaves no credential in its history', async () => {
    const bucket = await createTestBucket('e2e-creds');
    const expected = await generated(bucket);
    const { s3 } = await testServices();
    const s3Client = await s3ClientForTests();
    try {
      await withTestWorker(
        { dags: [getDag('sparkify_etl')], activities: createActivities({ store: createStore({ s3Client }) }) },
        async ({ client, taskQueue }) => {
          const run = await triggerDagRun(client, getDag('sparkify_etl'), {
            taskQueue,
            params: { input: `s3://${bucket}/input`, output: `s3://${bucket}/lake` },
          });
          const status = await waitForRun(run.handle);
          assert.equal(status.state, 'success');
          assertCounts((status.outputs.build_tables as { rows: Record<string, number> }).rows, expected);
          const history = await run.handle.fetchHistory();
          // Everything the history carries: its events, and every payload decoded (they are JSON bytes).
          const texts = [JSON.stringify(history)];
          const walk = (value: unknown): void => {
            if (value instanceof Uint8Array) texts.push(Buffer.from(value).toString('utf8'));
            else if (value && typeof value === 'object') for (const child of Object.values(value)) walk(child);
          };
          walk(history);
          const all = texts.join('\n');
          assert.ok(
            all.includes(`s3://${bucket}/input`),
            'the decoded history holds the params (the search looks in the right place)',
          );
          for (const secret of [s3.secretAccessKey, s3.accessKeyId])
            assert.ok(!all.includes(secret), 'a credential is in the history');
        },
      );
    } finally {
      s3Client.destroy();
    }
  });
});
