import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import fs from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { CreateBucketCommand, type S3Client } from '@aws-sdk/client-s3';
import { createS3Client, createStore, type Store } from '../activities/storage';
import {
  TABLES,
  generateSparkify,
  readPublished,
  runSparkifyPipeline,
  type GenerateExpectations,
  type TableName,
} from '../activities/sparkify';

// S3 for tests: versitygw (a real S3 server on a POSIX directory), started here until test/services.ts provides it.
const VERSITYGW = path.join(os.homedir(), '.cache/tempoflow/bin/versitygw');
const skip = existsSync(VERSITYGW) ? false : `versitygw not found at ${VERSITYGW}: S3 tests skipped`;

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
    srv.on('error', reject);
  });
}

async function startS3(): Promise<{ client: S3Client; stop: () => Promise<void> }> {
  const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'tempoflow-s3-'));
  const port = await freePort();
  const proc = spawn(VERSITYGW, ['--port', `127.0.0.1:${port}`, 'posix', dataDir], {
    env: { ...process.env, ROOT_ACCESS_KEY_ID: 'test-access', ROOT_SECRET_ACCESS_KEY: 'test-secret-key' },
    stdio: 'ignore',
  });
  for (let i = 0; i < 100; i++) {
    const up = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, '127.0.0.1', () => (s.end(), resolve(true)));
      s.on('error', () => resolve(false));
    });
    if (up) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  const client = createS3Client({
    env: {
      AWS_ENDPOINT_URL_S3: `http://127.0.0.1:${port}`,
      AWS_ACCESS_KEY_ID: 'test-access',
      AWS_SECRET_ACCESS_KEY: 'test-secret-key',
      AWS_REGION: 'us-east-1',
    },
  });
  return {
    client,
    stop: async () => {
      client.destroy();
      proc.kill();
      await fs.rm(dataDir, { recursive: true, force: true });
    },
  };
}

void describe('Sparkify on S3 (versitygw)', { skip }, () => {
  let s3: Awaited<ReturnType<typeof startS3>>;
  let store: Store;
  let exp: GenerateExpectations;
  let first: Record<TableName, Record<string, unknown>[]>;
  const input = 's3://sparkify-in/udacity-dend';
  const output = 's3://sparkify-lake/lake';
  const lake = async () => {
    const out = {} as Record<TableName, Record<string, unknown>[]>;
    for (const t of TABLES) out[t] = await readPublished(store, output, t);
    return out;
  };

  before(async () => {
    s3 = await startS3();
    store = createStore({ s3Client: s3.client });
    for (const b of ['sparkify-in', 'sparkify-lake']) await s3.client.send(new CreateBucketCommand({ Bucket: b }));
    exp = await generateSparkify({ out: input, songs: 700, events: 8000, days: 3, seed: 21, duplicates: 3, store });
  });
  after(async () => s3?.stop());

  void test('S3 in, S3 out: exact counts, two song chunks', async () => {
    const run = await runSparkifyPipeline({ store, input, output, runId: 'scheduled__2018-11-03' });
    assert.equal(run.list.songChunks.length, 2, '700 song files in chunks of 500');
    assert.deepEqual(run.build.rows, {
      songs: exp.songs,
      artists: exp.artists,
      users: exp.users,
      time: exp.startTimes,
      songplays: exp.nextSongEvents,
    });
    first = await lake();
    assert.equal(first.songplays.filter((p) => p.song_id !== null).length, exp.matchedPlays);
    const keys = (await store.list(output)).map((o) => o.key);
    assert.ok(keys.includes('songs/_run.json'));
    assert.ok(!keys.some((k) => k.startsWith('_staging/')));
  });

  void test('a second run replaces the tables with identical ones and removes the old files', async () => {
    await runSparkifyPipeline({ store, input, output, runId: 'manual__2' });
    assert.deepEqual(await lake(), first);
    const parquet = (await store.list(output)).filter((o) => o.key.endsWith('.parquet') && !o.key.startsWith('_'));
    assert.equal(new Set(parquet.map((o) => /part-([0-9a-f]+)-/.exec(o.key)?.[1])).size, 1);
    const marker = JSON.parse((await store.read(`${output}/songplays/_run.json`)).toString()) as {
      runId: string;
      files: string[];
    };
    assert.equal(marker.runId, 'manual__2');
    assert.deepEqual(
      marker.files.sort(),
      parquet
        .filter((o) => o.key.startsWith('songplays/'))
        .map((o) => o.key.slice('songplays/'.length))
        .sort(),
    );
  });

  void test('a publish that fails half way leaves the previous lake as it was', async () => {
    const other = 's3://sparkify-in/other';
    await generateSparkify({ out: other, songs: 40, events: 1000, days: 1, seed: 99, store });
    let copies = 0;
    const flaky: Store = {
      ...store,
      copy: async (from, to) => {
        if (++copies === 20) throw new Error('S3 said no');
        return store.copy(from, to);
      },
    };
    const keysBefore = (await store.list(output)).map((o) => o.key);
    await assert.rejects(runSparkifyPipeline({ store: flaky, input: other, output, runId: 'failing' }), /S3 said no/);
    assert.deepEqual(await lake(), first);
    const afterKeys = (await store.list(output)).map((o) => o.key).filter((k) => !k.startsWith('_'));
    assert.deepEqual(
      afterKeys,
      keysBefore.filter((k) => !k.startsWith('_')),
      'no new file is left in the tables',
    );
  });
});
