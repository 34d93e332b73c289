import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import { GetObjectCommand, ListObjectsV2Command, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { createS3Client, createStore } from '../storage';
import { classifyStorageError, StorageAccessError, StorageUnavailableError } from '../storage/errors';
import { encodeKey, LeanS3 } from '../storage/lean-s3';
import { freePort } from '../services/free-port';
import { createTestBucket, s3EnvForTests } from './services';

const md5 = (b: Uint8Array) => createHash('md5').update(b).digest('hex');

async function bytesOf(stream: AsyncIterable<unknown>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/** Keys the signer must canonicalise exactly as S3 does (each is written by one path and read by the other). */
const AWKWARD_KEYS = [
  'plain/a.json',
  'with space/and  two.json',
  'plus+sign/a+b.json',
  'percent%25/100%.json',
  'unicode/ünïcødé/日本語/🎵.json',
  "reserved/!'()*~;:@&=$,[].json",
  'query?and#hash/x.json',
  // (Not `a//b`: the test server's posix backend folds empty path segments.)
];

void describe('lean S3 path: where requests go', () => {
  void test('a custom endpoint is path-style; AWS buckets are virtual-host unless their name forbids it', async () => {
    const custom = new LeanS3(
      createS3Client({ env: { AWS_ENDPOINT_URL_S3: 'http://127.0.0.1:9000', AWS_REGION: 'eu-west-1' }, cwd: '/x' }),
    );
    assert.deepEqual(await custom.endpointFor('lake'), {
      url: 'http://127.0.0.1:9000/lake/',
      signingRegion: 'eu-west-1',
    });
    const aws = new LeanS3(createS3Client({ env: { AWS_REGION: 'us-west-2' }, cwd: '/x' }));
    assert.deepEqual(await aws.endpointFor('udacity-dend'), {
      url: 'https://udacity-dend.s3.us-west-2.amazonaws.com/',
      signingRegion: 'us-west-2',
    });
    // Dots in a bucket name break the TLS wildcard: the SDK's rules switch to path-style, and so does this path.
    assert.equal(
      (await aws.endpointFor('my.dotted.bucket'))?.url,
      'https://s3.us-west-2.amazonaws.com/my.dotted.bucket/',
    );
    // S3 Express directory buckets need session auth: left to S3Client.
    assert.equal(await aws.endpointFor('fast--usw2-az1--x-s3'), undefined);
    assert.equal(await aws.handles('fast--usw2-az1--x-s3'), false);
  });

  void test('keys are encoded once, segment by segment, as the SDK encodes them', () => {
    assert.equal(encodeKey('a b/c+d/e%f/ü'), 'a%20b/c%2Bd/e%25f/%C3%BC');
    assert.equal(encodeKey("x!'()*~y"), 'x%21%27%28%29%2A~y');
  });
});

void describe('lean S3 path against the S3 server', () => {
  void test('round trips with S3Client both ways, for keys with spaces, unicode, + and %', async () => {
    const env = await s3EnvForTests();
    const bucket = await createTestBucket('lean-keys');
    const client = createS3Client({ env });
    const lean = new LeanS3(client);
    try {
      for (const key of AWKWARD_KEYS) {
        const body = Buffer.from(`lean ${key}`);
        await lean.put(bucket, key, { bytes: body });
        const viaSdk = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
        assert.equal(await viaSdk.Body?.transformToString(), `lean ${key}`, `S3Client reads what lean wrote: ${key}`);
        assert.deepEqual(await lean.head(bucket, key), { size: body.length, etag: md5(body) }, key);

        await client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: `sdk ${key}` }));
        assert.equal((await bytesOf(await lean.get(bucket, key))).toString(), `sdk ${key}`, key);
      }
      const listed = await client.send(new ListObjectsV2Command({ Bucket: bucket }));
      assert.deepEqual(
        (listed.Contents ?? []).map((o) => o.Key).sort(),
        [...AWKWARD_KEYS].sort(),
        'each key stored as given, none decoded twice',
      );
      for (const key of AWKWARD_KEYS) await lean.delete(bucket, key);
      assert.equal((await client.send(new ListObjectsV2Command({ Bucket: bucket }))).KeyCount ?? 0, 0);
    } finally {
      lean.destroy();
      client.destroy();
    }
  });

  void test('not-found and precondition failures look like S3Client errors', async () => {
    const env = await s3EnvForTests();
    const bucket = await createTestBucket('lean-errors');
    const client = createS3Client({ env });
    const lean = new LeanS3(client);
    try {
      const missing = await lean.get(bucket, 'none.json').catch((e: unknown) => e);
      assert.equal((missing as Error).name, 'NoSuchKey');
      assert.equal(classifyStorageError(missing), 'not-found');
      const headMissing = await lean.head(bucket, 'none.json').catch((e: unknown) => e);
      assert.equal(classifyStorageError(headMissing), 'not-found');

      await lean.put(bucket, 'once.json', { bytes: Buffer.from('first') }, { ifNoneMatch: '*' });
      const second = await lean
        .put(bucket, 'once.json', { bytes: Buffer.from('second') }, { ifNoneMatch: '*' })
        .catch((e: unknown) => e);
      assert.equal((second as Error).name, 'PreconditionFailed');
      assert.equal((second as { $metadata: { httpStatusCode: number } }).$metadata.httpStatusCode, 412);
      assert.equal((await bytesOf(await lean.get(bucket, 'once.json'))).toString(), 'first');

      // Through the store (which the lease uses): exactly one of racing creators wins.
      const store = createStore({ s3Client: client });
      const results = await Promise.all(
        Array.from({ length: 8 }, (_, i) => store.createIfAbsent(`s3://${bucket}/race.json`, `writer ${i}`)),
      );
      assert.equal(results.filter(Boolean).length, 1, 'one creator wins');
      assert.equal(await store.exists(`s3://${bucket}/race.json`), true);
      assert.equal(await store.exists(`s3://${bucket}/nobody.json`), false);
      const storeMissing = await store.read(`s3://${bucket}/none.json`).catch((e: unknown) => e);
      assert.equal((storeMissing as Error).name, 'NoSuchKey', 'callers still see NoSuchKey');

      const noBucket = await store.read('s3://no-such-bucket-tempoflow-lean/x').catch((e: unknown) => e);
      assert.ok(noBucket instanceof StorageAccessError, String(noBucket));
      assert.match(noBucket.message, /bucket 'no-such-bucket-tempoflow-lean' does not exist/);
    } finally {
      lean.destroy();
      client.destroy();
    }
  });

  void test('wrong credentials fail at once, naming the bucket and the setting, never the secret', async () => {
    const env = await s3EnvForTests();
    const bucket = await createTestBucket('lean-creds');
    const good = createStore({ s3Client: createS3Client({ env }) });
    await good.write(`s3://${bucket}/x.json`, '{}');
    const secret = `not-the-secret-${randomBytes(6).toString('hex')}`;
    const t0 = Date.now();
    for (const [store, setting] of [
      [createStore({ s3Client: createS3Client({ env: { ...env, AWS_SECRET_ACCESS_KEY: secret } }) }), /SECRET/],
      [createStore({ s3Client: createS3Client({ env: { ...env, AWS_ACCESS_KEY_ID: 'NOSUCHKEY' } }) }), /ACCESS_KEY_ID/],
    ] as const) {
      for (const op of [
        () => store.read(`s3://${bucket}/x.json`),
        () => store.write(`s3://${bucket}/y.json`, 'y'),
        () => store.createIfAbsent(`s3://${bucket}/z.json`, 'z'),
        () => store.delete(`s3://${bucket}/x.json`),
      ]) {
        const err = await op().catch((e: unknown) => e);
        assert.ok(err instanceof StorageAccessError, String(err));
        assert.match(err.message, new RegExp(`bucket '${bucket}'`));
        assert.match(err.message, setting);
        for (const text of [err.message, JSON.stringify(err), String((err.cause as Error).message)]) {
          assert.ok(!text.includes(secret) && !text.includes(env.AWS_SECRET_ACCESS_KEY!), 'no secret in the error');
          assert.ok(!/Signature=|Credential=/.test(text), 'no signature in the error');
        }
      }
    }
    assert.ok(Date.now() - t0 < 10_000, 'no retries spent on them');
    assert.equal((await good.read(`s3://${bucket}/x.json`)).toString(), '{}', 'nothing was changed');
  });

  void test('an endpoint nobody listens on is an outage: retried, then retryable, naming the URI', async () => {
    const port = await freePort();
    const env = { ...(await s3EnvForTests()), AWS_ENDPOINT_URL_S3: `http://127.0.0.1:${port}`, AWS_MAX_ATTEMPTS: '2' };
    const client = createS3Client({ env });
    const direct = await new LeanS3(client).get('some-bucket', 'x').catch((e: unknown) => e);
    assert.equal((direct as NodeJS.ErrnoException).code, 'ECONNREFUSED');
    const err = await createStore({ s3Client: client })
      .write('s3://some-bucket/in/x.json', '{}')
      .catch((e: unknown) => e);
    assert.ok(err instanceof StorageUnavailableError, String(err));
    assert.equal(err.code, 'ECONNREFUSED');
    assert.match(err.message, /S3 unavailable during write s3:\/\/some-bucket\/in\/x\.json/);
  });

  void test('a body of several MB is streamed from its file and back', async () => {
    const env = await s3EnvForTests();
    const bucket = await createTestBucket('lean-large');
    const client = createS3Client({ env });
    const lean = new LeanS3(client);
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'tempoflow-lean-'));
    try {
      const file = path.join(dir, 'big.bin');
      const bytes = randomBytes(24 * 1024 * 1024);
      await fs.writeFile(file, bytes);
      await lean.put(bucket, 'big/file with space.bin', { file, size: bytes.length });
      assert.deepEqual(await lean.head(bucket, 'big/file with space.bin'), { size: bytes.length, etag: md5(bytes) });
      let chunks = 0;
      const hash = createHash('md5');
      for await (const chunk of await lean.get(bucket, 'big/file with space.bin')) {
        chunks++;
        hash.update(chunk as Buffer);
      }
      assert.equal(hash.digest('hex'), md5(bytes));
      assert.ok(chunks > 10, `the body arrived as a stream (${chunks} chunks)`);

      // The store sends a small file's bytes through the lean path from the file itself.
      const store = createStore({ s3Client: client });
      await fs.writeFile(path.join(dir, 'small.bin'), bytes.subarray(0, 1_000_000));
      await store.write(`s3://${bucket}/small.bin`, { file: path.join(dir, 'small.bin') });
      await store.download(`s3://${bucket}/small.bin`, path.join(dir, 'back.bin'));
      assert.equal(md5(await fs.readFile(path.join(dir, 'back.bin'))), md5(bytes.subarray(0, 1_000_000)));
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
      lean.destroy();
      client.destroy();
    }
  });

  void test('credentials come from the client once, and again only when they are about to expire', async () => {
    const env = await s3EnvForTests();
    const bucket = await createTestBucket('lean-refresh');
    let calls = 0;
    const client = (expiresInMs?: number) =>
      new S3Client({
        region: env.AWS_REGION,
        endpoint: env.AWS_ENDPOINT_URL_S3,
        forcePathStyle: true,
        credentials: () => {
          calls++;
          return Promise.resolve({
            accessKeyId: env.AWS_ACCESS_KEY_ID ?? '',
            secretAccessKey: env.AWS_SECRET_ACCESS_KEY ?? '',
            ...(expiresInMs ? { expiration: new Date(Date.now() + expiresInMs) } : {}),
          });
        },
      });
    const lasting = new LeanS3(client());
    for (let i = 0; i < 3; i++) await lasting.put(bucket, `a${i}`, { bytes: Buffer.from('a') });
    assert.equal(calls, 1, 'resolved once');
    calls = 0;
    // Within the SDK's 5-minute refresh window: every request asks the chain again (which refreshes them).
    const expiring = new LeanS3(client(60_000));
    for (let i = 0; i < 3; i++) await expiring.put(bucket, `b${i}`, { bytes: Buffer.from('b') });
    assert.ok(calls >= 3, `refreshed (${calls} calls)`);
  });
});
