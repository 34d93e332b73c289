import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { S3Client } from '@aws-sdk/client-s3';
import { createStore, mirrorPrefix, readDlCfgCredentials, s3ClientConfig, s3Etag, type Store } from '../storage';
import { createTestBucket, s3ClientForTests } from './services';

async function tempDir(): Promise<string> {
  return fs.mkdtemp(path.join(os.tmpdir(), 'tempoflow-storage-'));
}

async function exerciseStore(store: Store, root: string) {
  await store.write(`${root}/a/one.txt`, 'one');
  await store.write(`${root}/a/b/two.bin`, Buffer.from([1, 2, 3]));
  await store.write(`${root}/other/three.txt`, 'three');
  const listed = await store.list(`${root}/a`);
  assert.deepEqual(
    listed.map((o) => [o.key, o.size]),
    [
      ['b/two.bin', 3],
      ['one.txt', 3],
    ],
  );
  assert.ok(listed.every((o) => o.etag.length > 0));
  assert.equal((await store.read(`${root}/a/one.txt`)).toString(), 'one');
  const chunks: Buffer[] = [];
  for await (const c of await store.readStream(`${root}/a/b/two.bin`)) chunks.push(c as Buffer);
  assert.deepEqual([...Buffer.concat(chunks)], [1, 2, 3]);
  assert.equal(await store.exists(`${root}/a/one.txt`), true);
  assert.equal(await store.exists(`${root}/a/missing.txt`), false);
  assert.deepEqual(await store.list(`${root}/nothing-here`), []);

  assert.equal(await store.copyPrefix(`${root}/a`, `${root}/copy`), 2);
  assert.equal((await store.read(`${root}/copy/b/two.bin`)).length, 3);
  assert.equal(await store.renamePrefix(`${root}/copy`, `${root}/moved`), 2);
  assert.deepEqual(await store.list(`${root}/copy`), []);
  assert.deepEqual(
    (await store.list(`${root}/moved`)).map((o) => o.key),
    ['b/two.bin', 'one.txt'],
  );

  // move: the object is at its new key (new folders made), and gone from the old one.
  await store.write(`${root}/to-move.txt`, 'moving');
  await store.move(`${root}/to-move.txt`, `${root}/moved-here/deep/it.txt`);
  assert.equal((await store.read(`${root}/moved-here/deep/it.txt`)).toString(), 'moving');
  assert.equal(await store.exists(`${root}/to-move.txt`), false);
  await store.deletePrefix(`${root}/moved-here`);

  await store.delete(`${root}/a/one.txt`);
  assert.equal(await store.exists(`${root}/a/one.txt`), false);
  await store.deletePrefix(`${root}/moved`);
  assert.deepEqual(await store.list(`${root}/moved`), []);
  // A prefix is a directory: deleting `a` leaves `other` alone.
  await store.deletePrefix(`${root}/a`);
  assert.deepEqual(
    (await store.list(root)).map((o) => o.key),
    ['other/three.txt'],
  );
}

void test('mapLimit throws the first error only after the calls in flight have settled', async () => {
  const { mapLimit } = await import('../storage');
  let running = 0;
  let started = 0;
  const failing = mapLimit(
    Array.from({ length: 100 }, (_, i) => i),
    8,
    async (i) => {
      started++;
      running++;
      await new Promise((resolve) => setTimeout(resolve, i === 3 ? 5 : 30));
      running--;
      if (i === 3) throw new Error('item 3 failed');
      return i;
    },
  );
  await assert.rejects(failing, /item 3 failed/);
  assert.equal(running, 0, 'nothing is still running');
  assert.ok(started < 100, `no new call started after the failure (${started} started)`);
});

void describe('local store', () => {
  void test('write, list, read, copy, rename and delete', async () => {
    const dir = await tempDir();
    await exerciseStore(createStore(), dir);
    await fs.rm(dir, { recursive: true, force: true });
  });

  void test('writes leave no temp files behind, and listing relative paths works', async () => {
    const dir = await tempDir();
    const store = createStore();
    await Promise.all(Array.from({ length: 20 }, (_, i) => store.write(path.join(dir, 'x', `f${i}.txt`), `v${i}`)));
    const names = await fs.readdir(path.join(dir, 'x'));
    assert.equal(names.length, 20);
    assert.ok(names.every((n) => /^f\d+\.txt$/.test(n)));
    const rel = path.relative(process.cwd(), dir);
    assert.equal((await store.list(rel)).length, 20);
    // A file uploaded from disk.
    await store.write(path.join(dir, 'copy.txt'), { file: path.join(dir, 'x', 'f3.txt') });
    assert.equal((await store.read(path.join(dir, 'copy.txt'))).toString(), 'v3');
    await fs.rm(dir, { recursive: true, force: true });
  });
});

void describe('S3 client config', () => {
  void test('endpoint from the environment turns on path-style; region defaults to us-west-2', () => {
    const c = s3ClientConfig({ env: { AWS_ENDPOINT_URL_S3: 'http://127.0.0.1:9000' }, cwd: '/nonexistent' });
    assert.equal(c.endpoint, 'http://127.0.0.1:9000');
    assert.equal(c.forcePathStyle, true);
    assert.equal(c.region, 'us-west-2');
    assert.equal(c.retryMode, 'adaptive');
    const plain = s3ClientConfig({ env: { AWS_REGION: 'eu-west-1' }, cwd: '/nonexistent' });
    assert.equal(plain.endpoint, undefined);
    assert.equal(plain.forcePathStyle, undefined);
    assert.equal(plain.region, 'eu-west-1');
  });

  void test('dl.cfg credentials are used only when the environment has none', async () => {
    const dir = await tempDir();
    await fs.writeFile(
      path.join(dir, 'dl.cfg'),
      "[AWS]\nAWS_ACCESS_KEY_ID='AKIAFROMCFG'\nAWS_SECRET_ACCESS_KEY=cfgsecret\n",
    );
    assert.deepEqual(readDlCfgCredentials(path.join(dir, 'dl.cfg')), {
      accessKeyId: 'AKIAFROMCFG',
      secretAccessKey: 'cfgsecret',
    });
    const fromCfg = s3ClientConfig({ env: {}, cwd: dir });
    assert.deepEqual(fromCfg.credentials, { accessKeyId: 'AKIAFROMCFG', secretAccessKey: 'cfgsecret' });
    const viaVar = s3ClientConfig({ env: { TEMPOFLOW_DL_CFG: path.join(dir, 'dl.cfg') }, cwd: '/nonexistent' });
    assert.deepEqual(viaVar.credentials, { accessKeyId: 'AKIAFROMCFG', secretAccessKey: 'cfgsecret' });
    const fromEnv = s3ClientConfig({
      env: { AWS_ACCESS_KEY_ID: 'AKIAENV', AWS_SECRET_ACCESS_KEY: 'envsecret' },
      cwd: dir,
    });
    assert.deepEqual(fromEnv.credentials, { accessKeyId: 'AKIAENV', secretAccessKey: 'envsecret' });
    assert.equal(s3ClientConfig({ env: {}, cwd: '/nonexistent' }).credentials, undefined);
    await fs.rm(dir, { recursive: true, force: true });
  });
});

void describe('S3 store (versitygw)', () => {
  let client: S3Client;
  let store: Store;
  const bucket = () => createTestBucket('storage-test');
  before(async () => {
    client = await s3ClientForTests();
    store = createStore({ s3Client: client, partSize: 5 * 1024 * 1024 });
  });
  after(() => client.destroy());

  void test('write, list, read, copy, rename and delete', async () => {
    await exerciseStore(store, `s3://${await bucket()}/root`);
  });

  void test('move from a local file uploads it, then deletes the local file', async () => {
    const dir = await tempDir();
    try {
      const file = path.join(dir, 'layout.parquet');
      await fs.writeFile(file, 'laid out');
      const to = `s3://${await bucket()}/lake/songs/part.parquet`;
      await store.move(file, to);
      assert.equal((await store.read(to)).toString(), 'laid out');
      await assert.rejects(fs.stat(file), { code: 'ENOENT' });
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  });

  void test('list pages through more than 1000 keys, and deletePrefix removes them all', async () => {
    const root = `s3://${await bucket()}/many`;
    const { mapLimit } = await import('../storage');
    await mapLimit(
      Array.from({ length: 1105 }, (_, i) => i),
      32,
      (i) => store.write(`${root}/k${String(i).padStart(5, '0')}.txt`, String(i)),
    );
    const listed = await store.list(root);
    assert.equal(listed.length, 1105);
    assert.equal(new Set(listed.map((o) => o.key)).size, 1105);
    assert.equal(listed[1104]?.key, 'k01104.txt');
    await store.deletePrefix(root);
    assert.deepEqual(await store.list(root), []);
  });

  void test('a listing longer than a page, split by folders and listed side by side, is every key once, in order', async () => {
    // As song_data: one folder level with one child (split below it), then letters; keys beside the folders too,
    // a console's folder marker, and a folder of its own longer than a page.
    const splitBucket = await bucket();
    const root = `s3://${splitBucket}/split`;
    const keys = [
      ...Array.from(
        { length: 1030 },
        (_, i) => `data/${'ABCDEFGHIJ'[i % 10]}/${i % 3}/k${String(i).padStart(5, '0')}.json`,
      ),
      ...Array.from({ length: 1010 }, (_, i) => `data/Z/big${String(i).padStart(5, '0')}.json`),
      'data/top.json',
    ];
    const { mapLimit } = await import('../storage');
    await mapLimit(keys, 32, (k) => store.write(`${root}/${k}`, k));
    await store.write(`${root}/data/A/`, ''); // a folder marker: never listed as a file
    // A store of its own, whose client counts the listing requests and their prefixes.
    const counted = await s3ClientForTests();
    const lists: { prefix: string; delimited: boolean }[] = [];
    counted.middlewareStack.add(
      (next, context) => (args) => {
        if (context.commandName === 'ListObjectsV2Command') {
          const input = args.input as { Prefix?: string; Delimiter?: string };
          lists.push({ prefix: input.Prefix ?? '', delimited: input.Delimiter !== undefined });
        }
        return next(args);
      },
      { step: 'initialize' },
    );
    const listed = await createStore({ s3Client: counted }).list(root);
    counted.destroy();
    assert.deepEqual(
      listed.map((o) => o.key),
      [...keys].sort(),
    );
    assert.equal(listed[0]?.uri, `${root}/${listed[0]?.key}`);
    // The split: below `split/` (one folder) and `data/` (eleven), each folder listed on its own.
    assert.deepEqual(
      lists.filter((l) => l.delimited).map((l) => l.prefix),
      ['split/', 'split/data/'],
    );
    assert.deepEqual(
      [...new Set(lists.filter((l) => !l.delimited && l.prefix !== 'split/').map((l) => l.prefix))].sort(),
      [...'ABCDEFGHIJZ'].map((d) => `split/data/${d}/`),
    );
    assert.deepEqual(
      (await store.list(`${root}/data/Z`)).map((o) => o.key),
      keys.filter((k) => k.startsWith('data/Z/')).map((k) => k.slice('data/Z/'.length)),
    );
    await store.deletePrefix(root);
    assert.deepEqual(await store.list(root), []);
  });

  void test('large bodies go up as multipart uploads and read back intact', async () => {
    const dir = await tempDir();
    const file = path.join(dir, 'big.bin');
    const big = Buffer.alloc(12 * 1024 * 1024 + 123);
    for (let i = 0; i < big.length; i += 4096) big[i] = (i / 4096) % 251;
    await fs.writeFile(file, big);
    const uri = `s3://${await bucket()}/big/big.bin`;
    await store.write(uri, { file });
    const [info] = await store.list(`${uri.slice(0, uri.lastIndexOf('/'))}`);
    assert.equal(info?.size, big.length);
    // A multipart object's ETag ends in -<parts>: 12 MiB in 5 MiB parts is 3 parts.
    assert.match(info?.etag ?? '', /-3$/);
    assert.ok((await store.read(uri)).equals(big));
    await store.download(uri, path.join(dir, 'back.bin'));
    assert.ok((await fs.readFile(path.join(dir, 'back.bin'))).equals(big));
    assert.equal(await s3Etag(file, big.length, 5 * 1024 * 1024), info?.etag, 'the multipart ETag is recomputed');
    await fs.rm(dir, { recursive: true, force: true });
  });

  void test('mirrorPrefix keeps local files that match, downloads the rest and removes extras', async () => {
    const dir = await tempDir();
    const root = `s3://${await bucket()}/mirror`;
    const big = Buffer.alloc(6 * 1024 * 1024, 7);
    await store.write(`${root}/same.txt`, 'same');
    await store.write(`${root}/changed.txt`, 'new content');
    await store.write(`${root}/p/big.bin`, big);
    await fs.mkdir(path.join(dir, 'p'), { recursive: true });
    await fs.writeFile(path.join(dir, 'same.txt'), 'same');
    await fs.writeFile(path.join(dir, 'changed.txt'), 'old content'); // same size, other bytes
    await fs.writeFile(path.join(dir, 'p', 'big.bin'), big);
    await fs.writeFile(path.join(dir, 'extra.txt'), 'not in the bucket');
    const downloaded: string[] = [];
    const counting: Store = { ...store, download: (uri, file) => (downloaded.push(uri), store.download(uri, file)) };
    const progress: number[] = [];
    const out = await mirrorPrefix(counting, root, dir, {
      partSize: 5 * 1024 * 1024,
      onProgress: (p) => progress.push(p.filesDone),
    });
    assert.equal(out, dir);
    assert.deepEqual(downloaded, [`${root}/changed.txt`], 'matching files (multipart one too) are not downloaded');
    assert.equal(await fs.readFile(path.join(dir, 'changed.txt'), 'utf8'), 'new content');
    assert.deepEqual((await fs.readdir(dir, { recursive: true })).sort(), [
      'changed.txt',
      'p',
      'p/big.bin',
      'same.txt',
    ]);
    assert.equal(Math.max(...progress), 3);
    // A local prefix is read in place.
    assert.equal(await mirrorPrefix(store, dir, '/nonexistent/elsewhere'), dir);
    await fs.rm(dir, { recursive: true, force: true });
  });
});
