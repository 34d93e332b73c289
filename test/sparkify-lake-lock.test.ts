/**
 * One lock per lake, whoever starts the run: four daily interval runs started together into one local lake,
 * each naming the folder a different way (absolute, ./relative, through a symlink, with `.` and a trailing
 * slash), with no Temporal lock between them at all (as runs on different Temporal servers, or `trigger --local`
 * beside a worker), leave exactly the tables one run over those four days gives. Only the lease kept in the
 * lake itself keeps their publishes from interleaving.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { generateSparkify, readPublished, runSparkifyPipeline, TABLES } from '../activities/sparkify';
import { createStore } from '../storage';
import type { DataInterval } from '../core/types';

const DAYS = 4;
const store = createStore();

function day(d: number): DataInterval {
  const start = new Date(Date.UTC(2018, 10, 1 + d));
  return { start: start.toISOString(), end: new Date(start.getTime() + 86_400_000).toISOString() };
}

async function lake(output: string) {
  return Object.fromEntries(
    await Promise.all(TABLES.map(async (t) => [t, await readPublished(store, output, t)] as const)),
  );
}

describe('one lock per lake', () => {
  it('four daily runs started together, each spelling the lake differently, lose nothing', async () => {
    const root = await fs.mkdtemp(path.join(tmpdir(), 'tempoflow-lake-lock-'));
    const input = path.join(root, 'input');
    await generateSparkify({ out: input, songs: 80, events: 1600, days: DAYS, seed: 12, duplicates: 3 });
    const lakeDir = path.join(root, 'lake');
    await fs.mkdir(lakeDir);
    const link = path.join(root, 'link-to-lake');
    await fs.symlink(lakeDir, link);
    const spellings = [lakeDir, `./${path.relative(process.cwd(), lakeDir)}`, link, `${root}/./lake/`];

    const runs = await Promise.allSettled(
      spellings.map((output, d) =>
        runSparkifyPipeline({ store, input, output, runId: `lake-lock-day-${d}`, dataInterval: day(d) }),
      ),
    );
    const failures = runs.flatMap((r, d) => (r.status === 'rejected' ? [`${spellings[d]}: ${String(r.reason)}`] : []));
    assert.deepEqual(failures, [], 'every run succeeds');

    // The reference: one run over the same four days into an empty lake.
    const reference = path.join(root, 'reference');
    const period = { start: day(0).start, end: day(DAYS - 1).end };
    await runSparkifyPipeline({ store, input, output: reference, runId: 'four-days', dataInterval: period });
    const [merged, expected] = [await lake(lakeDir), await lake(reference)];
    assert.ok(expected.songplays!.length > 100, `the reference has plays (${expected.songplays!.length})`);
    assert.equal(merged.songplays!.length, expected.songplays!.length, 'every play of the four days is there');
    for (const table of TABLES) assert.deepEqual(merged[table], expected[table], `table ${table}`);
  });
});
