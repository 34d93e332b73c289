/**
 * `tempoflow sparkify vacuum`: the work areas of runs that never published go once they are older than the
 * retention; recent areas, areas an interrupted publish may need and the published lake stay. A run whose area
 * went is refused by publish (never published as less), and a vacuum waits for the lake's lease like a publish.
 * On a local lake and on the S3 server.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, utimes } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { generateSparkify, prepareSparkifyRun, publish, runSparkifyPipeline } from '../activities/sparkify';
import type { DuckDbOptions } from '../activities/sparkify';
import { lakeStatePaths, runPaths } from '../activities/sparkify/paths';
import { vacuumStaging } from '../activities/sparkify/vacuum';
import { acquireLease, LeaseBusyError } from '../storage/lease';
import { createStore, joinUri } from '../storage';
import type { Store } from '../storage';
import { createTestBucket, s3ClientForTests } from './services';

const DAY = 24 * 3600 * 1000;
const BIN = fileURLToPath(new URL('../bin/tempoflow.js', import.meta.url));

const keysUnder = async (store: Store, uri: string) => (await store.list(uri)).map((o) => o.key).sort();

function vacuumSuite(kind: 'local' | 's3') {
  void describe(`vacuum on a ${kind} lake`, () => {
    let store: Store;
    let lake: string;
    let input: string;
    let duckdb: DuckDbOptions;
    const cleanup: (() => void)[] = [];

    before(async () => {
      duckdb = { workDirectory: await mkdtemp(path.join(tmpdir(), 'tempoflow-vacuum-work-')), threads: 1 };
      input = await mkdtemp(path.join(tmpdir(), 'tempoflow-vacuum-input-'));
      await generateSparkify({ out: input, songs: 5, events: 200, days: 2, seed: 7 });
      if (kind === 's3') {
        const client = await s3ClientForTests();
        cleanup.push(() => client.destroy());
        store = createStore({ s3Client: client });
        lake = `s3://${await createTestBucket('vacuum')}/lake`;
      } else {
        store = createStore();
        lake = path.join(await mkdtemp(path.join(tmpdir(), 'tempoflow-vacuum-')), 'lake');
      }
      // A published lake, then two runs that never published (as a failed or cancelled run leaves them).
      await runSparkifyPipeline({ store, input, output: lake, runId: 'published', duckdb });
      for (const runId of ['failed-old', 'failed-new']) {
        await prepareSparkifyRun({ store, input, output: lake, runId, duckdb, rebuildSongs: true });
      }
    });
    after(() => cleanup.forEach((f) => f()));

    it('removes only areas older than the retention, keeps the published lake, and a dry run removes nothing', async () => {
      const staging = joinUri(lake, '_staging');
      const [oldArea, newArea] = ['failed-old', 'failed-new'].map((r) => runPaths(lake, r).staging) as [string, string];
      assert.ok((await store.list(oldArea)).length > 0 && (await store.list(newArea)).length > 0);
      // "Old": on a local lake its files are dated back 8 days; on S3 (whose times cannot be set) the vacuum
      // measures from 8 days ahead, and the recent area is the one with a file written then.
      let now: number | undefined;
      if (kind === 'local') {
        const eightDaysAgo = new Date(Date.now() - 8 * DAY);
        for (const o of await store.list(oldArea)) await utimes(o.uri, eightDaysAgo, eightDaysAgo);
      } else {
        now = Date.now() + 8 * DAY;
      }
      // An interrupted publish's journal names a run whose area must stay, however old.
      const journaled = runPaths(lake, 'crashed-publish').staging;
      await store.write(joinUri(journaled, 'song_input.json'), '{}');
      await store.write(joinUri(lake, '_state', 'publish', 'crashed-publish.json'), '{}');
      if (kind === 'local') {
        for (const o of await store.list(journaled)) await utimes(o.uri, new Date(0), new Date(0));
      }

      // Everything but the work areas and the lease (whose generation files each holder adds) must stay as it is.
      const lakeFiles = async () =>
        (await store.list(lake))
          .map((o) => o.key)
          .filter((k) => !k.startsWith('_staging/') && !k.startsWith('_state/lease/'));
      const published = await lakeFiles();
      const before = await keysUnder(store, staging);
      const dry = await vacuumStaging({ store, lake, retainMs: 7 * DAY, dryRun: true, now });
      assert.deepEqual(await keysUnder(store, staging), before, 'a dry run removes nothing');
      const expected =
        kind === 'local'
          ? {
              'crashed-publish': 'kept: publish in progress',
              'failed-new': 'kept: recent',
              'failed-old': 'would remove',
            }
          : {
              'crashed-publish': 'kept: publish in progress',
              'failed-new': 'would remove',
              'failed-old': 'would remove',
            };
      assert.deepEqual(Object.fromEntries(dry.areas.map((a) => [a.run, a.action])), expected);

      const done = await vacuumStaging({ store, lake, retainMs: 7 * DAY, now });
      const removed = done.areas.filter((a) => a.action === 'removed').map((a) => a.run);
      assert.deepEqual(removed, kind === 'local' ? ['failed-old'] : ['failed-new', 'failed-old']);
      assert.equal(done.removedFiles, before.filter((k) => removed.some((r) => k.startsWith(`${r}/`))).length);
      assert.deepEqual(await store.list(oldArea), []);
      assert.ok((await store.list(journaled)).length > 0, 'the journaled area stays');
      if (kind === 'local') assert.ok((await store.list(newArea)).length > 0, 'the recent area stays');
      assert.deepEqual(await lakeFiles(), published, 'the published lake and its state are untouched');
      // (The stand-in journal goes first: publish would try to finish it.)
      await store.delete(joinUri(lake, '_state', 'publish', 'crashed-publish.json'));
      // The run whose area went cannot publish less: it is refused.
      await assert.rejects(
        publish({ store, output: lake, runId: 'failed-old', duckdb }),
        /run failed-old has nothing staged to publish .*: run the DAG again/,
      );
    });

    it('waits for the lake lease: it removes nothing while a publish holds it', async () => {
      const area = runPaths(lake, 'held').staging;
      await store.write(joinUri(area, 'song_input.json'), '{}');
      const holder = await acquireLease(store, lakeStatePaths(lake).lease, 'a publish');
      try {
        await assert.rejects(
          vacuumStaging({
            store,
            lake,
            retainMs: 0,
            now: Date.now() + DAY,
            lease: { ttlMs: 2_000, waitMs: 500, pollMs: 100 },
          }),
          LeaseBusyError,
        );
        assert.ok((await store.list(area)).length > 0);
      } finally {
        await holder.release();
      }
      const done = await vacuumStaging({ store, lake, retainMs: 0, now: Date.now() + DAY });
      assert.ok(done.areas.some((a) => a.run === 'held' && a.action === 'removed'));
    });
  });
}

vacuumSuite('local');
vacuumSuite('s3');

void describe('tempoflow sparkify vacuum', () => {
  it('reports the areas in a table, and names a bad --retain', async () => {
    const lake = path.join(await mkdtemp(path.join(tmpdir(), 'tempoflow-vacuum-cli-')), 'lake');
    const store = createStore();
    await store.write(joinUri(runPaths(lake, 'some-run').staging, 'song_input.json'), '{}');
    const run = (args: string[]) =>
      new Promise<{ code: number; stdout: string; stderr: string }>((resolve) =>
        execFile(
          process.execPath,
          [BIN, 'sparkify', 'vacuum', '--lake', lake, ...args],
          { env: { ...process.env, NO_COLOR: '1' } },
          (err, stdout, stderr) => resolve({ code: err ? Number(err.code) : 0, stdout, stderr }),
        ),
      );
    const dry = await run(['--dry-run']);
    assert.equal(dry.code, 0, dry.stderr);
    assert.match(dry.stdout, /^some-run\s+1\s+2 B\s+\S+\s+kept: recent$/m);
    assert.match(dry.stdout, /would remove 0 of 1 work areas/);
    const bad = await run(['--retain', 'soon']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--retain: "soon" is not a duration/);
    const gone = await run(['--retain', '1ms']);
    assert.match(gone.stdout, /removed 1 of 1 work areas \(1 files, 2 B\)/);
    assert.deepEqual(await store.list(joinUri(lake, '_staging')), []);
    // A mistyped lake is an error, and vacuum leaves nothing there (no lease folder making it look like a lake).
    const typo = `${lake}-typo`;
    const missing = await new Promise<{ code: number; stderr: string }>((resolve) =>
      execFile(process.execPath, [BIN, 'sparkify', 'vacuum', '--lake', typo], (err, _out, stderr) =>
        resolve({ code: err ? Number(err.code) : 0, stderr }),
      ),
    );
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /no Sparkify lake at .*-typo: no published tables and no work areas/);
    assert.equal(existsSync(typo), false);
  });
});
