/**
 * Interval runs merge into the lake: any sequence of daily runs covering a period, in any order and with
 * repeats, leaves every table equal, row by row, to one full run over that period; concurrent interval runs
 * on Temporal lose nothing.
 */
import assert from 'node:assert/strict';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { before, describe, it } from 'node:test';
import { createActivities } from '../activities';
import { generateSparkify, readPublished, runSparkifyPipeline, runToken, TABLES } from '../activities/sparkify';
import type { GenerateExpectations } from '../activities/sparkify';
import { createStore } from '../storage';
import { triggerDagRun, waitForRun } from '../client/runs';
import type { DataInterval } from '../core/types';
import { getDag } from '../dags';
import { withTestWorker } from './support';

const DAYS = 30;
const CONCURRENT = 8;
const store = createStore();

function day(d: number): DataInterval {
  const start = new Date(Date.UTC(2018, 10, 1 + d));
  return { start: start.toISOString(), end: new Date(start.getTime() + 86_400_000).toISOString() };
}

/** A seeded shuffle of the days, then some days again. */
function shuffledWithRepeats(seed: number): number[] {
  const days = Array.from({ length: DAYS }, (_, d) => d);
  let s = seed;
  const random = () => (s = (s * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  for (let i = days.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [days[i], days[j]] = [days[j]!, days[i]!];
  }
  return [...days, days[2]!, days[0]!, days[5]!];
}

async function lake(output: string) {
  return Object.fromEntries(
    await Promise.all(TABLES.map(async (t) => [t, await readPublished(store, output, t)] as const)),
  );
}

describe('incremental Sparkify', () => {
  let input: string;
  let full: Awaited<ReturnType<typeof lake>>;
  let expected: GenerateExpectations;

  before(async () => {
    const root = await mkdtemp(path.join(tmpdir(), 'tempoflow-incremental-'));
    input = path.join(root, 'input');
    expected = await generateSparkify({ out: input, songs: 150, events: 9000, days: DAYS, seed: 5, duplicates: 5 });
    const output = path.join(root, 'full');
    await runSparkifyPipeline({ store, input, output, runId: 'full' });
    full = await lake(output);
    assert.equal(full.songplays!.length, expected.nextSongEvents);
    assert.ok(expected.levelChangedUsers.length > 0, 'the data has users who change level');
  });

  it('30 daily runs in shuffled order with repeats give the tables of one full run', async () => {
    const output = await mkdtemp(path.join(tmpdir(), 'tempoflow-incremental-b-'));
    const order = shuffledWithRepeats(7);
    for (const [i, d] of order.entries()) {
      await runSparkifyPipeline({ store, input, output, runId: `interval-${i}`, dataInterval: day(d) });
      if (i === 0) {
        const partial = await lake(output);
        assert.ok(partial.songplays!.length < full.songplays!.length, 'after one day the lake holds that day only');
      }
    }
    const merged = await lake(output);
    for (const table of TABLES) assert.deepEqual(merged[table], full[table], `table ${table}`);
  });

  it('an interval run reads and rewrites only the partitions it touches', async () => {
    const root = await mkdtemp(path.join(tmpdir(), 'tempoflow-incremental-e-'));
    const twoMonths = path.join(root, 'input');
    await generateSparkify({ out: twoMonths, songs: 40, events: 3000, days: 10, seed: 11, startDate: '2018-10-27' });
    const output = path.join(root, 'lake');
    await runSparkifyPipeline({ store, input: twoMonths, output, runId: 'full' });
    const before = await lake(output);
    const files = async () =>
      (await store.list(output)).filter((o) => /^(songplays|time)\/year=/.test(o.key)).map((o) => `${o.key} ${o.etag}`);
    const filesBefore = await files();
    const october = (list: string[]) => list.filter((f) => f.includes('/month=10/'));
    assert.ok(october(filesBefore).length > 0 && october(filesBefore).length < filesBefore.length);

    const run = await runSparkifyPipeline({
      store,
      input: twoMonths,
      output,
      runId: 'nov-2',
      dataInterval: { start: '2018-11-02T00:00:00Z', end: '2018-11-03T00:00:00Z' },
    });
    assert.deepEqual(run.published.partitions, ['year=2018/month=11']);
    const filesAfter = await files();
    assert.deepEqual(october(filesAfter), october(filesBefore), 'October files are untouched');
    const november = filesAfter.filter((f) => f.includes('/month=11/'));
    assert.ok(november.length > 0 && november.every((f) => f.includes(`part-${runToken('nov-2')}-`)));
    const marker = JSON.parse((await store.read(path.join(output, 'songplays/_run.json'))).toString()) as {
      files: string[];
    };
    assert.deepEqual(
      marker.files,
      filesAfter.filter((f) => f.startsWith('songplays/')).map((f) => f.split(' ')[0]!.slice('songplays/'.length)),
      'the marker names every current file, kept and new',
    );
    assert.deepEqual(await lake(output), before, 'the same day again leaves the lake as it was');

    // A lake written before user_days existed cannot be merged into: the run says what to do.
    await store.deletePrefix(path.join(output, '_state/user_days'));
    await assert.rejects(
      runSparkifyPipeline({ store, input: twoMonths, output, runId: 'old-lake', dataInterval: day(1) }),
      { name: 'InputDataError', message: /no .*_state\/user_days\/.*run the DAG once without a data interval/ },
    );
    assert.deepEqual(await lake(output), before);
  });

  it('8 concurrent daily runs on Temporal against one output lose nothing', async () => {
    const output = await mkdtemp(path.join(tmpdir(), 'tempoflow-incremental-c-'));
    const dag = getDag('sparkify_etl');
    await withTestWorker({ dags: [dag], activities: createActivities({ store }) }, async ({ client, taskQueue }) => {
      const runs = await Promise.all(
        Array.from({ length: CONCURRENT }, (_, d) =>
          triggerDagRun(client, dag, {
            taskQueue,
            params: { input, output },
            dataInterval: day(d),
            runId: `incr-${Date.now()}-${d}`,
          }),
        ),
      );
      const statuses = await Promise.all(runs.map((r) => waitForRun(r.handle)));
      assert.deepEqual(
        statuses.map((s) => s.state),
        Array(CONCURRENT).fill('success'),
      );
    });
    // The reference: one run over the same 8 days into an empty lake.
    const reference = await mkdtemp(path.join(tmpdir(), 'tempoflow-incremental-d-'));
    const period = { start: day(0).start, end: day(CONCURRENT - 1).end };
    await runSparkifyPipeline({ store, input, output: reference, runId: 'eight-days', dataInterval: period });
    const [merged, expectedLake] = [await lake(output), await lake(reference)];
    assert.ok(expectedLake.songplays!.length > 0 && expectedLake.songplays!.length < full.songplays!.length);
    for (const table of TABLES) assert.deepEqual(merged[table], expectedLake[table], `table ${table}`);
  });
});
