/**
 * Publish and merge are crash-safe: the storage layer fails at the Nth mutating call, for every N of a publish
 * (full run and interval run, local and S3 lakes); in between every table a reader opens is the old or the new
 * one, and a retry ends with exactly the lake an uninterrupted publish gives. Also: two attempts at once, a late
 * attempt of a finished publish, and a publish whose staging is gone.
 */
import assert from 'node:assert/strict';
import { cp, mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  generateSparkify,
  prepareSparkifyRun,
  publish,
  publishedFiles,
  readTable,
  runSparkifyPipeline,
  TABLES,
} from '../activities/sparkify';
import type { DuckDbOptions, PublishResult } from '../activities/sparkify';
import { RUN_MARKER } from '../activities/sparkify/lake-files';
import type { LayoutName } from '../activities/sparkify/paths';
import { createStore, joinUri } from '../storage';
import type { Store } from '../storage';
import type { DataInterval } from '../core/types';
import { crashingStore } from './fault-store';
import { createTestBucket, s3ClientForTests } from './services';

const LAYOUT: readonly LayoutName[] = [...TABLES, 'user_days'];
const tablePath = (t: LayoutName) => (t === 'user_days' ? '_state/user_days' : t);
/**
 * Short leases: a crashed attempt never releases its lease, and the retry waits for it to expire. Not shorter
 * than 2 s: on a loaded 2-core machine a renewal can come more than 800 ms late and the live holder loses it.
 */
const LEASE = { ttlMs: 2_000, waitMs: 20_000, pollMs: 100 };

function days(from: number, to: number): DataInterval {
  return {
    start: new Date(Date.UTC(2018, 10, 1 + from)).toISOString(),
    end: new Date(Date.UTC(2018, 10, 1 + to)).toISOString(),
  };
}

type Lake = Record<LayoutName, Record<string, unknown>[]>;

async function readLake(store: Store, output: string, duckdb: DuckDbOptions): Promise<Lake> {
  const out = {} as Lake;
  for (const t of LAYOUT) out[t] = await readTable(store, joinUri(output, tablePath(t)), t, duckdb);
  return out;
}

/** After a finished publish: each table directory holds exactly the files its marker names, and no work is left. */
async function assertTidy(store: Store, output: string, runId: string): Promise<void> {
  for (const t of LAYOUT) {
    const dir = joinUri(output, tablePath(t));
    const listed = (await store.list(dir)).map((o) => o.key).filter((k) => k !== RUN_MARKER);
    const named = (await publishedFiles(store, dir)).map((o) => o.key);
    assert.deepEqual(listed.sort(), named.sort(), `${t}: only the files its marker names`);
  }
  assert.deepEqual(await store.list(joinUri(output, '_staging', runId)), [], 'staging removed');
  assert.deepEqual(await store.list(joinUri(output, '_state', 'publish')), [], 'no journal left');
  assert.ok(await store.exists(joinUri(output, '_runs', runId, 'publish.json')), 'the publish is recorded');
}

interface Scenario {
  name: string;
  /** A lake with a published old version and the new run staged and validated, ready to publish. */
  template: string;
  runId: string;
  dataInterval: DataInterval | null;
  fresh: () => Promise<string>;
}

async function scenarios(store: Store, root: (name: string) => Promise<string>, duckdb: DuckDbOptions) {
  const base = await mkdtemp(path.join(tmpdir(), 'tempoflow-faults-input-'));
  const [inputOld, inputNew] = [path.join(base, 'old'), path.join(base, 'new')];
  await generateSparkify({ out: inputOld, songs: 5, events: 240, days: 3, seed: 3 });
  await generateSparkify({ out: inputNew, songs: 6, events: 300, days: 4, seed: 4, duplicates: 2 });
  const out: Scenario[] = [];
  for (const interval of [false, true]) {
    const template = await root(`template-${interval ? 'interval' : 'full'}`);
    const runId = interval ? 'daily-new' : 'full-new';
    if (interval) {
      await runSparkifyPipeline({
        store,
        input: inputNew,
        output: template,
        runId: 'daily-old',
        dataInterval: days(0, 2),
        duckdb,
      });
    } else {
      await runSparkifyPipeline({ store, input: inputOld, output: template, runId: 'full-old', duckdb });
    }
    const dataInterval = interval ? days(1, 3) : null;
    await prepareSparkifyRun({ store, input: inputNew, output: template, runId, dataInterval, duckdb });
    out.push({
      name: interval ? 'interval run (merge)' : 'full run',
      template,
      runId,
      dataInterval,
      fresh: () => root('lake'),
    });
  }
  return out;
}

function faultSuite(kind: 'local' | 's3') {
  describe(`publish on a ${kind} lake survives a crash at every storage call`, () => {
    let store: Store;
    let duckdb: DuckDbOptions;
    let root: (name: string) => Promise<string>;
    let copyLake: (from: string, to: string) => Promise<void>;
    let cases: Scenario[];
    const cleanup: (() => void)[] = [];

    before(async () => {
      duckdb = { workDirectory: await mkdtemp(path.join(tmpdir(), 'tempoflow-faults-work-')), threads: 1 };
      if (kind === 's3') {
        const client = await s3ClientForTests();
        cleanup.push(() => client.destroy());
        store = createStore({ s3Client: client });
        const bucket = await createTestBucket('faults');
        let n = 0;
        root = async (name) => `s3://${bucket}/${name}-${n++}`;
        copyLake = async (from, to) => void (await store.copyPrefix(from, to));
      } else {
        store = createStore();
        const dir = await mkdtemp(path.join(tmpdir(), 'tempoflow-faults-'));
        let n = 0;
        root = async (name) => path.join(dir, `${name}-${n++}`);
        copyLake = (from, to) => cp(from, to, { recursive: true });
      }
      cases = await scenarios(store, root, duckdb);
    });
    after(() => cleanup.forEach((f) => f()));

    for (const index of [0, 1]) {
      it(`${index === 0 ? 'full run' : 'interval run (merge)'}: every crash point, then a retry`, async () => {
        const c = cases[index]!;
        const args = { runId: c.runId, dataInterval: c.dataInterval, duckdb, lease: LEASE };
        const restore = async () => {
          const output = await c.fresh();
          await copyLake(c.template, output);
          return output;
        };
        const before = await readLake(store, c.template, duckdb);

        // The uninterrupted publish: the lake every crashed-and-retried one must end as, and its call count.
        const clean = await restore();
        const counting = crashingStore(store);
        await publish({ store: counting.store, output: clean, ...args });
        const expected = await readLake(store, clean, duckdb);
        await assertTidy(store, clean, c.runId);
        const calls = counting.mutations;
        assert.ok(calls > 10, `a publish makes many storage changes (${calls})`);
        for (const t of LAYOUT) {
          if (!(c.dataInterval && (t === 'songs' || t === 'artists'))) {
            assert.notDeepEqual(expected[t], before[t], `${t} changes, so old and new can be told apart`);
          }
        }

        for (let crashAt = 1; crashAt <= calls; crashAt++) {
          const output = await restore();
          const crashing = crashingStore(store, crashAt);
          const first = await publish({ store: crashing.store, output, ...args }).then(
            (r): PublishResult | Error => r,
            (e: unknown) => e as Error,
          );
          assert.ok(crashing.crashed, `crash point ${crashAt} was reached`);
          // The lease's release is the only call whose failure the publish survives.
          const where = `crash at call ${crashAt} of ${calls}`;
          const between = await readLake(store, output, duckdb);
          for (const t of LAYOUT) {
            const whole = isDeepEqual(between[t], before[t]) || isDeepEqual(between[t], expected[t]);
            assert.ok(whole, `${where}: table ${t} is the old or the new one`);
          }
          const retried = await publish({ store, output, ...args });
          if (!(first instanceof Error))
            assert.deepEqual(retried, first, `${where}: the late retry reports the result`);
          assert.deepEqual(await readLake(store, output, duckdb), expected, `${where}: the lake after the retry`);
          await assertTidy(store, output, c.runId);
        }
      });
    }

    it('two attempts at once, then a late one, give the uninterrupted lake; the late one changes nothing', async () => {
      const c = cases[1]!;
      const args = { runId: c.runId, dataInterval: c.dataInterval, duckdb, lease: { ...LEASE, ttlMs: 5_000 } };
      const clean = await c.fresh();
      await copyLake(c.template, clean);
      await publish({ store, output: clean, ...args });
      const expected = await readLake(store, clean, duckdb);

      const output = await c.fresh();
      await copyLake(c.template, output);
      const [a, b] = await Promise.all([publish({ store, output, ...args }), publish({ store, output, ...args })]);
      assert.deepEqual(a, b, 'both attempts report the one publish');
      assert.deepEqual(await readLake(store, output, duckdb), expected);
      await assertTidy(store, output, c.runId);

      const listing = async () =>
        (await store.list(output)).filter((o) => !o.key.startsWith('_state/lease/')).map((o) => `${o.key} ${o.etag}`);
      const settled = await listing();
      assert.deepEqual(await publish({ store, output, ...args }), a, 'the late attempt answers from the record');
      assert.deepEqual(await listing(), settled, 'and changes nothing in the lake');
    });

    it('a publish whose staging is gone, with nothing recorded, is refused and changes nothing', async () => {
      const c = cases[0]!;
      const output = await c.fresh();
      await copyLake(c.template, output);
      await store.deletePrefix(joinUri(output, '_staging'));
      const before = await readLake(store, output, duckdb);
      await assert.rejects(
        publish({ store, output, runId: c.runId, dataInterval: c.dataInterval, duckdb, lease: LEASE }),
        /has nothing staged to publish/,
      );
      assert.deepEqual(await readLake(store, output, duckdb), before);
    });
  });
}

function isDeepEqual(a: unknown, b: unknown): boolean {
  try {
    assert.deepEqual(a, b);
    return true;
  } catch {
    return false;
  }
}

faultSuite('local');
faultSuite('s3');
