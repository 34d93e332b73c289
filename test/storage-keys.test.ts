/**
 * Object keys never escape the local folder they are copied into (issue 12, item 8). S3 accepts keys such as
 * `a/../../escape.txt` or `a\..\..\escape.txt`; a worker mirroring a prefix must refuse them, not write outside
 * its folder.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import type { S3Client } from '@aws-sdk/client-s3';
import { NonRetryableTaskError, TempoflowError } from '../core/errors';
import { createStore, mirrorPrefix, safeLocalPath, UnsafeObjectKeyError, type Store } from '../storage';
import { downloadAll } from '../activities/sparkify/transfer';
import { createTestBucket, s3ClientForTests } from './services';

/** Every file under `dir`, relative to it. */
async function filesUnder(dir: string): Promise<string[]> {
  const entries = await fs.readdir(dir, { recursive: true, withFileTypes: true });
  return entries
    .filter((e) => e.isFile())
    .map((e) => path.relative(dir, path.join(e.parentPath, e.name)))
    .sort();
}

void describe('safeLocalPath', () => {
  const root = path.join(os.tmpdir(), 'mirror-root');

  void test('maps plain keys under the folder', () => {
    assert.equal(safeLocalPath(root, 'a/b/c.parquet'), path.join(root, 'a', 'b', 'c.parquet'));
    assert.equal(safeLocalPath(root, 'year=2018/..hidden'), path.join(root, 'year=2018', '..hidden'));
    assert.equal(
      safeLocalPath(root, '_staging/etl__2018-11-02T00:00:00.000Z/x.json'),
      path.join(root, '_staging', 'etl__2018-11-02T00:00:00.000Z', 'x.json'),
    );
  });

  for (const [key, reason] of [
    ['a/../../escape.txt', /'\.\.' segment/],
    ['../escape.txt', /'\.\.' segment/],
    ['a/..', /'\.\.' segment/],
    ['/etc/passwd', /absolute path/],
    ['C:/Windows/escape.txt', /absolute path/],
    ['a\\..\\..\\escape.txt', /backslash/],
    ['a/\0/x', /NUL/],
  ] as const) {
    void test(`refuses ${JSON.stringify(key)}, naming the key and the folder`, () => {
      assert.throws(
        () => safeLocalPath(root, key),
        (err: unknown) => {
          assert.ok(err instanceof UnsafeObjectKeyError);
          assert.ok(err instanceof NonRetryableTaskError, 'not retried: the key will not change');
          assert.ok(err instanceof TempoflowError);
          assert.equal(err.type, 'UnsafeObjectKeyError');
          assert.match(err.message, reason);
          assert.ok(err.message.includes(`'${key}'`), err.message);
          assert.ok(err.message.includes(root), err.message);
          return true;
        },
      );
    });
  }
});

void describe('S3 object keys that would escape a local folder (versitygw)', () => {
  let client: S3Client;
  let store: Store;
  let bucket: string;
  let sandbox: string;
  // versitygw (a file-backed server) resolves '..' in request paths before storing, so it cannot hold
  // `a/../../escape.txt` literally; it does hold a key with backslashes, which Windows reads as separators.
  const unsafeKey = 'a\\..\\..\\escape.txt';

  before(async () => {
    client = await s3ClientForTests();
    store = createStore({ s3Client: client });
    bucket = await createTestBucket('unsafe-keys');
    await client.send(new PutObjectCommand({ Bucket: bucket, Key: 'in/good/one.txt', Body: 'one' }));
    await client.send(new PutObjectCommand({ Bucket: bucket, Key: `in/${unsafeKey}`, Body: 'escaped' }));
  });
  after(() => client.destroy());

  /** A fresh sandbox with the target folder inside it, so writes outside the folder would show. */
  async function target(): Promise<string> {
    sandbox = await fs.mkdtemp(path.join(os.tmpdir(), 'tempoflow-keys-'));
    const folder = path.join(sandbox, 'deep', 'folder');
    await fs.mkdir(folder, { recursive: true });
    return folder;
  }

  async function assertRefusedAndNothingWritten(folder: string, attempt: Promise<unknown>) {
    await assert.rejects(attempt, (err: unknown) => {
      assert.ok(err instanceof UnsafeObjectKeyError, `got ${String(err)}`);
      assert.ok(err.message.includes(`'${unsafeKey}'`), err.message);
      assert.ok(err.message.includes(folder), err.message);
      return true;
    });
    assert.deepEqual(await filesUnder(sandbox), [], 'refused before any file was written, inside or out');
    await fs.rm(sandbox, { recursive: true, force: true });
  }

  void test('the server lists the unsafe key as it was written', async () => {
    const listed = await store.list(`s3://${bucket}/in`);
    assert.deepEqual(
      listed.map((o) => o.key),
      [unsafeKey, 'good/one.txt'],
    );
  });

  void test('downloadPrefix refuses it', async () => {
    const folder = await target();
    await assertRefusedAndNothingWritten(folder, store.downloadPrefix(`s3://${bucket}/in`, folder));
  });

  void test('mirrorPrefix refuses it', async () => {
    const folder = await target();
    await assertRefusedAndNothingWritten(folder, mirrorPrefix(store, `s3://${bucket}/in`, folder));
  });

  void test('copyPrefix and renamePrefix into a local folder refuse it, and the objects stay', async () => {
    const folder = await target();
    await assertRefusedAndNothingWritten(folder, store.copyPrefix(`s3://${bucket}/in`, `file://${folder}`));
    const again = await target();
    await assertRefusedAndNothingWritten(again, store.renamePrefix(`s3://${bucket}/in`, again));
    assert.equal((await store.list(`s3://${bucket}/in`)).length, 2, 'a refused rename deletes nothing');
  });

  void test('downloadAll (the lake readers) refuses it', async () => {
    const folder = await target();
    const objects = await store.list(`s3://${bucket}/in`);
    const items = objects.map((o) => ({ o, local: path.join(folder, ...o.key.split('/')) }));
    await assert.rejects(downloadAll(store, items), UnsafeObjectKeyError);
    assert.deepEqual(await filesUnder(sandbox), []);
    await fs.rm(sandbox, { recursive: true, force: true });
  });

  void test('a prefix of safe keys still downloads', async () => {
    const folder = await target();
    assert.equal(await store.downloadPrefix(`s3://${bucket}/in/good`, folder), 1);
    assert.deepEqual(await filesUnder(sandbox), [path.join('deep', 'folder', 'one.txt')]);
    await fs.rm(sandbox, { recursive: true, force: true });
  });
});
