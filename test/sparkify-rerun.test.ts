/**
 * A new execution of a run id (a failed run triggered again) starts afresh: what an earlier execution staged,
 * and a publish of it that crashed half way, neither break nor leak into the new execution.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { it } from 'node:test';
import {
  generateSparkify,
  prepareSparkifyRun,
  publish,
  readPublished,
  runSparkifyPipeline,
  TABLES,
} from '../activities/sparkify';
import { createStore } from '../storage';
import { crashingStore } from './fault-store';

const store = createStore();
const lake = (output: string) => Promise.all(TABLES.map((t) => readPublished(store, output, t)));

it("a new execution of a run id: the earlier execution's staging and crashed publish do not leak into it", async () => {
  const root = await mkdtemp(path.join(tmpdir(), 'tempoflow-rerun-'));
  const input = path.join(root, 'input');
  await generateSparkify({ out: input, songs: 20, events: 1200, days: 12, seed: 8 });
  const output = path.join(root, 'lake');

  // The first execution staged three log chunks (5 + 5 + 2 files); its publish died half way.
  const first = await prepareSparkifyRun({ store, input, output, runId: 'rerun' });
  assert.equal(first.list.logChunks.length, 3);
  const crashing = crashingStore(store, 8);
  await assert.rejects(publish({ store: crashing.store, output, runId: 'rerun', lease: { ttlMs: 800 } }));

  // The input is corrected (six days withdrawn) and the run is started again under the same id.
  const logDir = path.join(input, 'log_data', '2018', '11');
  for (const f of (await readdir(logDir)).sort().slice(6)) await rm(path.join(logDir, f));
  const again = await runSparkifyPipeline({ store, input, output, runId: 'rerun' });
  assert.equal(again.list.logChunks.length, 2, 'two chunks now; the third one staged before must not count');
  assert.equal(again.quality.passed, true);

  const clean = path.join(root, 'clean');
  await runSparkifyPipeline({ store, input, output: clean, runId: 'clean' });
  assert.deepEqual(await lake(output), await lake(clean), 'the lake holds exactly the corrected input');
});
