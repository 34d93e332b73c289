import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import { S3ServiceException } from '@aws-sdk/client-s3';
import { NonRetryableTaskError } from '../core/errors';
import { createS3Client, createStore } from '../storage';
import { classifyStorageError, StorageAccessError, storageError, StorageUnavailableError } from '../storage/errors';
import { freePort } from '../services/free-port';
import { createTestBucket, s3EnvForTests } from './services';

const sysError = (code: string, message = code) => Object.assign(new Error(message), { code });
const s3Error = (name: string, httpStatusCode: number, fault: 'client' | 'server' = 'client') =>
  new S3ServiceException({ name, $fault: fault, $metadata: { httpStatusCode }, message: name });

void describe('classifyStorageError', () => {
  void test('network and service faults are infrastructure (retried)', () => {
    for (const code of ['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH']) {
      assert.equal(classifyStorageError(sysError(code)), 'infrastructure', code);
    }
    // A dual-stack connect fails with an AggregateError of the per-address errors.
    assert.equal(
      classifyStorageError(new AggregateError([sysError('ECONNREFUSED'), sysError('ECONNREFUSED')], 'connect')),
      'infrastructure',
    );
    assert.equal(classifyStorageError(Object.assign(new Error('slow'), { name: 'TimeoutError' })), 'infrastructure');
    assert.equal(classifyStorageError(s3Error('SlowDown', 503, 'server')), 'infrastructure');
    assert.equal(classifyStorageError(s3Error('InternalError', 500, 'server')), 'infrastructure');
    assert.equal(classifyStorageError(s3Error('BadGateway', 502, 'server')), 'infrastructure');
    assert.equal(classifyStorageError(s3Error('TooManyRequestsException', 429)), 'infrastructure');
    assert.equal(
      classifyStorageError(new Error('upload failed', { cause: sysError('ECONNRESET') })),
      'infrastructure',
      'the cause counts',
    );
  });

  void test('credentials, permissions, a missing bucket and the wrong region are access errors', () => {
    for (const [name, status] of [
      ['AccessDenied', 403],
      ['InvalidAccessKeyId', 403],
      ['SignatureDoesNotMatch', 403],
      ['ExpiredToken', 400],
      ['NoSuchBucket', 404],
      ['InvalidBucketName', 400],
      ['XAdminUserNotFound', 404],
      ['PermanentRedirect', 301],
      ['Forbidden', 403],
      ['UnknownError', 403],
    ] as const) {
      assert.equal(classifyStorageError(s3Error(name, status)), 'access', name);
    }
    const noCredentials = Object.assign(new Error('Could not load credentials from any providers'), {
      name: 'CredentialsProviderError',
    });
    assert.equal(classifyStorageError(noCredentials), 'access');
    assert.equal(classifyStorageError(sysError('EACCES')), 'access');
    assert.equal(classifyStorageError(sysError('EROFS')), 'access');
  });

  void test('missing objects are not-found; bugs, bad data and cancellation are other', () => {
    assert.equal(classifyStorageError(s3Error('NoSuchKey', 404)), 'not-found');
    assert.equal(classifyStorageError(s3Error('NotFound', 404)), 'not-found');
    assert.equal(classifyStorageError(sysError('ENOENT')), 'not-found');
    assert.equal(classifyStorageError(new SyntaxError('Unexpected token')), 'other');
    assert.equal(classifyStorageError(new TypeError('x is undefined')), 'other');
    assert.equal(classifyStorageError(Object.assign(new Error('aborted'), { name: 'AbortError' })), 'other');
    assert.equal(classifyStorageError('a string'), 'other');
  });

  void test('storageError: access errors are non-retryable and name the bucket and the setting', () => {
    const denied = storageError(s3Error('AccessDenied', 403), 's3://lake-bucket/lake/songs/x.parquet', 'write');
    assert.ok(denied instanceof StorageAccessError);
    assert.ok(denied instanceof NonRetryableTaskError, 'the worker turns it into a non-retryable failure');
    assert.match(denied.message, /write s3:\/\/lake-bucket\/lake\/songs\/x\.parquet/);
    assert.match(denied.message, /bucket 'lake-bucket'/);
    assert.match(denied.message, /AWS_ACCESS_KEY_ID/);
    assert.match(denied.message, /AWS_PROFILE/);
    assert.match(denied.message, /dl\.cfg/);

    const copy = storageError(s3Error('NoSuchBucket', 404), ['s3://in/a', 's3://out/b'], 'copy');
    assert.ok(copy instanceof StorageAccessError);
    assert.match(copy.message, /bucket 'in' \/ 'out' does not exist/);
    assert.match(copy.message, /AWS_ENDPOINT_URL_S3/);

    const region = storageError(s3Error('PermanentRedirect', 301), 's3://far/x', 'read');
    assert.match((region as Error).message, /set AWS_REGION/);

    const local = storageError(sysError('EACCES', 'permission denied'), '/data/lake/x', 'write');
    assert.ok(local instanceof StorageAccessError);
    assert.match(local.message, /write \/data\/lake\/x: permission denied \(EACCES\)/);
  });

  void test('storageError: outages become retryable errors naming the URI; others are left as they are', () => {
    const down = storageError(sysError('ECONNREFUSED', 'connect ECONNREFUSED 127.0.0.1:9'), 's3://b/k', 'read');
    assert.ok(down instanceof StorageUnavailableError);
    assert.ok(!(down instanceof NonRetryableTaskError));
    assert.equal(down.code, 'ECONNREFUSED');
    assert.match(down.message, /S3 unavailable during read s3:\/\/b\/k \(ECONNREFUSED: connect ECONNREFUSED/);
    const missing = s3Error('NoSuchKey', 404);
    assert.equal(storageError(missing, 's3://b/k'), missing, 'callers still see NoSuchKey');
    const bug = new TypeError('x is undefined');
    assert.equal(storageError(bug, 's3://b/k'), bug);
    assert.equal(storageError(down, 's3://b/other'), down, 'never wrapped twice');
  });
});

void describe('Store errors from real servers', () => {
  void test('wrong credentials and a missing bucket fail at once, naming the bucket and the setting', async () => {
    const env = await s3EnvForTests();
    const bucket = await createTestBucket('errors');
    const good = createStore({ s3Client: createS3Client({ env }) });
    await good.write(`s3://${bucket}/x.json`, '{}');

    const wrongSecret = createStore({
      s3Client: createS3Client({ env: { ...env, AWS_SECRET_ACCESS_KEY: 'not-the-secret' } }),
    });
    const t0 = Date.now();
    const secretErr = await wrongSecret.read(`s3://${bucket}/x.json`).catch((e: unknown) => e);
    assert.ok(secretErr instanceof StorageAccessError, String(secretErr));
    assert.match(secretErr.message, new RegExp(`bucket '${bucket}'`));
    assert.match(secretErr.message, /AWS_SECRET_ACCESS_KEY/);
    assert.ok(!secretErr.message.includes(env.AWS_SECRET_ACCESS_KEY ?? 'unset'), 'no secret in the message');

    const wrongKey = createStore({ s3Client: createS3Client({ env: { ...env, AWS_ACCESS_KEY_ID: 'NOSUCHKEY' } }) });
    const keyErr = await wrongKey.list(`s3://${bucket}/`).catch((e: unknown) => e);
    assert.ok(keyErr instanceof StorageAccessError, String(keyErr));
    assert.match(keyErr.message, /AWS_ACCESS_KEY_ID/);

    const noBucket = await good.list('s3://no-such-bucket-tempoflow/lake').catch((e: unknown) => e);
    assert.ok(noBucket instanceof StorageAccessError, String(noBucket));
    assert.match(noBucket.message, /bucket 'no-such-bucket-tempoflow' does not exist/);
    assert.ok(Date.now() - t0 < 10_000, 'no retries spent on them');

    // A missing object stays a not-found the callers recognise.
    const missing = await good.read(`s3://${bucket}/none.json`).catch((e: unknown) => e);
    assert.equal(classifyStorageError(missing), 'not-found');
    assert.equal((missing as Error).name, 'NoSuchKey');
    assert.equal(await good.exists(`s3://${bucket}/none.json`), false);
  });

  void test('an S3 endpoint nobody listens on is an outage: retryable, naming the URI', async () => {
    const port = await freePort();
    const env = { ...(await s3EnvForTests()), AWS_ENDPOINT_URL_S3: `http://127.0.0.1:${port}`, AWS_MAX_ATTEMPTS: '2' };
    const store = createStore({ s3Client: createS3Client({ env }) });
    const err = await store.read('s3://some-bucket/in/x.json').catch((e: unknown) => e);
    assert.ok(err instanceof StorageUnavailableError, String(err));
    assert.equal(err.code, 'ECONNREFUSED');
    assert.match(err.message, /S3 unavailable during read s3:\/\/some-bucket\/in\/x\.json/);
    // A body given as a string is data, not a URI: never in the message (it would reach logs and run histories).
    const writes = [
      (uri: string, body: string) => store.write(uri, body),
      (uri: string, body: string) => store.createIfAbsent(uri, body),
    ];
    for (const write of writes) {
      const failed = await write('s3://some-bucket/logs/a.jsonl', '{"msg":"the body"}').catch((e: unknown) => e);
      assert.ok(failed instanceof StorageUnavailableError, String(failed));
      assert.match(failed.message, /during (write|createIfAbsent) s3:\/\/some-bucket\/logs\/a\.jsonl \(/);
      assert.doesNotMatch(failed.message, /the body/);
    }
  });

  void test('local files: a missing file is not-found, as node reports it', async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'tempoflow-errors-'));
    try {
      const err = await createStore()
        .read(path.join(dir, 'none.json'))
        .catch((e: unknown) => e);
      assert.equal((err as NodeJS.ErrnoException).code, 'ENOENT');
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  });
});
