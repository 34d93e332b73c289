/**
 * One lock per lake: `Store.createIfAbsent` is exclusive, the lease kept in the lake admits one holder at a time
 * (on the real S3 server and in local folders), expires and is taken over with a report, fences an expired
 * holder, and every spelling of a lake meets the same lease.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { after, before, describe, test } from 'node:test';
import { createStore, type Store } from '../storage';
import { acquireLease, LeaseBusyError, LeaseLostError } from '../storage/lease';
import { canonicalUri, joinUri } from '../storage/uri';
import { canonicalLocationSyntax } from '../core/locations';
import { createTestBucket, s3ClientForTests } from './services';

/** Where a lake keeps its lease (as publish does: `<output>/_state/lease`). */
const leaseDir = (lake: string) => joinUri(lake, '_state', 'lease');

async function tempDir(): Promise<string> {
  return fs.mkdtemp(path.join(os.tmpdir(), 'tempoflow-lease-'));
}

let s3Store: Store;
let bucket: string;
const localStore = createStore();
let client: Awaited<ReturnType<typeof s3ClientForTests>>;

before(async () => {
  client = await s3ClientForTests();
  s3Store = createStore({ s3Client: client });
  bucket = await createTestBucket('lease');
});
after(() => client.destroy());

const backends: { name: string; store: () => Store; root: () => Promise<string> }[] = [
  { name: 'S3', store: () => s3Store, root: async () => `s3://${bucket}/${Math.random().toString(36).slice(2)}` },
  { name: 'local', store: () => localStore, root: tempDir },
];

for (const backend of backends) {
  describe(`lease (${backend.name})`, () => {
    test('createIfAbsent: of 20 racing creators exactly one wins, and its body is whole', async () => {
      const store = backend.store();
      const dir = joinUri(await backend.root(), 'journal');
      const uri = joinUri(dir, 'one.json');
      const results = await Promise.all(
        Array.from({ length: 20 }, (_, i) =>
          store.createIfAbsent(uri, JSON.stringify({ writer: i, pad: 'x'.repeat(5000) })),
        ),
      );
      assert.equal(results.filter(Boolean).length, 1);
      const winner = results.indexOf(true);
      assert.equal((JSON.parse((await store.read(uri)).toString()) as { writer: number }).writer, winner);
      assert.equal(await store.createIfAbsent(uri, 'again'), false);
      assert.deepEqual(
        (await store.list(dir)).map((o) => o.key),
        ['one.json'],
        'no temp files are left beside it',
      );
      if (backend.name === 'local') {
        const names = await fs.readdir(path.dirname(uri));
        assert.deepEqual(names, ['one.json'], 'no hidden temp files either');
      }
    });

    test('two owners: one holds, the other gets LeaseBusyError after waitMs; release lets it in', async () => {
      const store = backend.store();
      const dir = leaseDir(await backend.root());
      const first = await acquireLease(store, dir, 'run-a#1', { ttlMs: 60_000 });
      assert.equal(first.tookOver, undefined);
      const started = Date.now();
      await assert.rejects(acquireLease(store, dir, 'run-b#1', { waitMs: 400, pollMs: 50 }), (err: unknown) => {
        assert.ok(err instanceof LeaseBusyError);
        assert.match(err.message, /held by 'run-a#1'/);
        assert.ok(err.message.includes(dir), err.message);
        return true;
      });
      assert.ok(Date.now() - started >= 400, 'it waited waitMs first');
      await first.assertHeld();

      // A release while the other waits lets it in at once, and is no takeover.
      const waiting = acquireLease(store, dir, 'run-b#2', { waitMs: 10_000, pollMs: 50 });
      await delay(150);
      await first.release();
      const second = await waiting;
      assert.equal(second.tookOver, undefined);
      assert.equal(second.generation, first.generation + 1);
      await second.assertHeld();
      await assert.rejects(first.assertHeld(), LeaseLostError);
      await second.release();
    });

    test('many concurrent acquirers never hold at once', async () => {
      const store = backend.store();
      const dir = leaseDir(await backend.root());
      let inside = 0;
      let maxInside = 0;
      const order: string[] = [];
      await Promise.all(
        Array.from({ length: 8 }, async (_, i) => {
          for (let round = 0; round < 2; round++) {
            const lease = await acquireLease(store, dir, `worker-${i}-${round}`, { waitMs: 60_000, pollMs: 20 });
            inside++;
            maxInside = Math.max(maxInside, inside);
            order.push(lease.owner);
            await delay(10);
            await lease.assertHeld();
            inside--;
            await lease.release();
          }
        }),
      );
      assert.equal(maxInside, 1);
      assert.equal(order.length, 16);
      assert.equal(new Set(order).size, 16);
      // Old generations are cleaned up: only the last one is left.
      const files = (await store.list(dir)).map((o) => o.key);
      assert.equal(files.length, 1, files.join(', '));
    });

    test('an expired lease is taken over and reported; the old holder is fenced off', async () => {
      const store = backend.store();
      const dir = leaseDir(await backend.root());
      const dead = await acquireLease(store, dir, 'dead-run#1', { ttlMs: 600 });
      const expiresAt = (
        JSON.parse((await store.read(joinUri(dir, '000000000001.json'))).toString()) as { expiresAt: string }
      ).expiresAt;
      const started = Date.now();
      const taker = await acquireLease(store, dir, 'next-run#1', { ttlMs: 60_000, waitMs: 10_000, pollMs: 50 });
      assert.ok(Date.now() >= Date.parse(expiresAt), 'not before the expiry');
      assert.ok(Date.now() - started < 5_000);
      assert.deepEqual(taker.tookOver, { owner: 'dead-run#1', expiredAt: expiresAt });
      await taker.assertHeld();

      await assert.rejects(dead.assertHeld(), (err: unknown) => {
        assert.ok(err instanceof LeaseLostError);
        assert.match(err.message, /dead-run#1/);
        return true;
      });
      await assert.rejects(dead.renew(), LeaseLostError);
      await dead.release(); // a lost holder's release changes nothing
      await taker.assertHeld();
      await assert.rejects(acquireLease(store, dir, 'third#1', { waitMs: 100, pollMs: 20 }), LeaseBusyError);
      await taker.release();
    });

    test('renewal keeps a live holder; fencing fires within the safety margin before expiry', async () => {
      const store = backend.store();
      const dir = leaseDir(await backend.root());
      const holder = await acquireLease(store, dir, 'long-run#1', { ttlMs: 800 });
      const keeper = setInterval(() => void holder.renew().catch(() => undefined), 150);
      try {
        await assert.rejects(acquireLease(store, dir, 'other#1', { waitMs: 2_000, pollMs: 50 }), LeaseBusyError);
        await holder.assertHeld();
      } finally {
        clearInterval(keeper);
      }
      await delay(50);
      // Not renewed: within the margin (ttl/4 = 200 ms) of its expiry the holder stops counting it as held,
      // before anyone may take it.
      await delay(700);
      await assert.rejects(holder.assertHeld(), LeaseLostError);
      await assert.rejects(holder.renew(), LeaseLostError);
      const next = await acquireLease(store, dir, 'other#2', { waitMs: 5_000, pollMs: 20 });
      assert.equal(next.tookOver?.owner, 'long-run#1');
      await next.release();
    });

    test('a renewal in flight when the holder releases does not hold the lease again', async () => {
      const store = backend.store();
      const dir = leaseDir(await backend.root());
      const holder = await acquireLease(store, dir, 'renewing#1', { ttlMs: 60_000 });
      const renewal = holder.renew();
      await holder.release();
      await renewal;
      const next = await acquireLease(store, dir, 'next#1', { waitMs: 200, pollMs: 20 });
      assert.equal(next.tookOver, undefined);
      await next.release();
    });

    test('acquire stops when its signal aborts', async () => {
      const store = backend.store();
      const dir = leaseDir(await backend.root());
      const holder = await acquireLease(store, dir, 'holder#1');
      const controller = new AbortController();
      setTimeout(() => controller.abort(new Error('cancelled by test')), 100);
      await assert.rejects(
        acquireLease(store, dir, 'waiter#1', { waitMs: 30_000, pollMs: 20, signal: controller.signal }),
        {
          message: 'cancelled by test',
        },
      );
      await holder.release();
    });
  });
}

describe('every spelling of a lake meets the same lease', () => {
  const busy = async (store: Store, lake: string, owner: string) =>
    assert.rejects(acquireLease(store, leaseDir(lake), owner, { waitMs: 50, pollMs: 10 }), LeaseBusyError, lake);

  test('S3: s3a://b/lake, s3://b/lake/, s3n://b/lake//', async () => {
    const held = await acquireLease(s3Store, leaseDir(`s3a://${bucket}/spelled/lake`), 'a#1');
    for (const spelling of [
      `s3://${bucket}/spelled/lake/`,
      `s3n://${bucket}/spelled/lake//`,
      `s3://${bucket}/spelled/lake`,
    ]) {
      await busy(s3Store, spelling, 'b#1');
    }
    await held.release();
    const next = await acquireLease(s3Store, leaseDir(`s3://${bucket}/spelled/lake/`), 'b#2');
    assert.equal(next.generation, held.generation + 1);
    await next.release();
  });

  test('local: ./relative, absolute, trailing slash, symlink, file:// URL', async () => {
    const root = await tempDir();
    const lake = path.join(root, 'lake');
    await fs.mkdir(lake);
    const link = path.join(root, 'link-to-lake');
    await fs.symlink(lake, link);
    const relative = `./${path.relative(process.cwd(), lake)}`;
    const held = await acquireLease(localStore, leaseDir(relative), 'rel#1');
    for (const spelling of [lake, `${lake}/`, `${root}/./lake`, link, `${link}/`, `file://${lake}`]) {
      await busy(localStore, spelling, 'other#1');
    }
    await held.release();
    const viaLink = await acquireLease(localStore, leaseDir(link), 'link#1');
    await busy(localStore, relative, 'rel#2');
    await viaLink.release();
  });
});

describe('canonical locations', () => {
  test('canonicalLocationSyntax: scheme aliases, slashes, dot segments; canonical input unchanged', () => {
    const cases: [string, string][] = [
      ['s3a://b/lake', 's3://b/lake'],
      ['s3n://b/lake/', 's3://b/lake'],
      ['S3://b//lake///x/', 's3://b/lake/x'],
      ['s3://b/lake/./x/../y', 's3://b/lake/y'],
      ['s3://b/', 's3://b'],
      ['s3://b', 's3://b'],
      ['./lake', 'lake'],
      ['lake/', 'lake'],
      ['a/../lake', 'lake'],
      ['../up/./lake//', '../up/lake'],
      ['.', '.'],
      ['/data//lake/./', '/data/lake'],
      ['/data/x/../lake', '/data/lake'],
      ['/../lake', '/lake'],
      ['file:///data/my%20lake/', '/data/my lake'],
      ['gs://b/lake/', 'gs://b/lake/'],
      ['customer-42', 'customer-42'],
    ];
    for (const [input, expected] of cases) assert.equal(canonicalLocationSyntax(input), expected, input);
    for (const [, canonical] of cases) assert.equal(canonicalLocationSyntax(canonical), canonical, canonical);
  });

  test('canonicalUri: S3 spellings, relative paths, symlinks (also of a prefix that does not exist yet)', async () => {
    assert.equal(canonicalUri('s3a://b/lake/'), 's3://b/lake');
    assert.equal(canonicalUri('s3://b//lake/../lake2'), 's3://b/lake2');
    const root = await fs.realpath(await tempDir());
    const lake = path.join(root, 'real', 'lake');
    await fs.mkdir(lake, { recursive: true });
    const link = path.join(root, 'link');
    await fs.symlink(path.join(root, 'real'), link);
    assert.equal(canonicalUri(lake), lake);
    assert.equal(canonicalUri(`${lake}/`), lake);
    assert.equal(canonicalUri(`./${path.relative(process.cwd(), lake)}`), lake);
    assert.equal(canonicalUri(`${link}/lake`), lake);
    assert.equal(canonicalUri(`${link}/lake/not/yet/there`), path.join(lake, 'not', 'yet', 'there'));
    assert.equal(canonicalUri(`${root}/real/./x/../lake`), lake);
    assert.equal(canonicalUri(`file://${link}/lake`), lake);
    // `..` is resolved before symlinks, as the store resolves paths: `link/../x` is `<root>/x`.
    assert.equal(canonicalUri(`${link}/../x`), path.join(root, 'x'));
  });
});
