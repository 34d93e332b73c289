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
  publishedFiles,
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
  const first = await prepareSparkifyRun({ store, input, output, runId: 'rerun', logChunkFiles: 5 });
  assert.equal(first.list.logChunks.length, 3);
  const crashing = crashingStore(store, 8);
  await assert.rejects(publish({ store: crashing.store, output, runId: 'rerun', lease: { ttlMs: 800 } }));

  // The input is corrected (six days withdrawn) and the run is started again under the same id.
  const logDir = path.join(input, 'log_data', '2018', '11');
  for (const f of (await readdir(logDir)).sort().slice(6)) await rm(path.join(logDir, f));
  const again = await runSparkifyPipeline({ store, input, output, runId: 'rerun', logChunkFiles: 5 });
  assert.equal(again.list.logChunks.length, 2, 'two chunks now; the third one staged before must not count');
  assert.equal(again.quality.passed, true);

  const clean = path.join(root, 'clean');
  await runSparkifyPipeline({ store, input, output: clean, runId: 'clean' });
  assert.deepEqual(await lake(output), await lake(clean), 'the lake holds exactly the corrected input');
});

it('a full run over a lake of other data leaves only its own files: no stale file, no empty partition folder', async () => {
  const root = await mkdtemp(path.join(tmpdir(), 'tempoflow-replace-'));
  const [before, after] = [path.join(root, 'before'), path.join(root, 'after')];
  // Other seeds: other artists, so most `songs/year=/artist_id=/` folders of the first run have no place in the second.
  await generateSparkify({ out: before, songs: 30, events: 900, days: 3, seed: 21 });
  await generateSparkify({ out: after, songs: 25, events: 700, days: 2, seed: 22 });
  const output = path.join(root, 'lake');
  await runSparkifyPipeline({ store, input: before, output, runId: 'before' });
  const firstSongFolders = new Set(await leafFolders(path.join(output, 'songs')));
  await runSparkifyPipeline({ store, input: after, output, runId: 'after' });

  for (const table of TABLES) {
    const dir = path.join(output, table);
    const onDisk = (await readdir(dir, { recursive: true, withFileTypes: true }))
      .filter((e) => e.isFile() && e.name.endsWith('.parquet'))
      .map((e) => path.relative(dir, path.join(e.parentPath, e.name)).split(path.sep).join('/'))
      .sort();
    const marked = (await publishedFiles(store, dir)).map((o) => o.key).sort();
    assert.deepEqual(onDisk, marked, `${table}: exactly the files its marker names`);
    for (const folder of await leafFolders(dir)) {
      assert.ok((await readdir(path.join(dir, folder))).length > 0, `${table}/${folder} is left empty`);
    }
  }
  const songFolders = await leafFolders(path.join(output, 'songs'));
  assert.ok(
    [...firstSongFolders].some((f) => !songFolders.includes(f)),
    'some partition folders of the first run went',
  );

  const clean = path.join(root, 'clean');
  await runSparkifyPipeline({ store, input: after, output: clean, runId: 'clean' });
  assert.deepEqual(await lake(output), await lake(clean), 'the lake holds exactly the second input');
  await rm(root, { recursive: true, force: true });
});

/** Folders under `dir` (relative) that hold no folder. */
async function leafFolders(dir: string): Promise<string[]> {
  const dirs = (await readdir(dir, { recursive: true, withFileTypes: true })).filter((e) => e.isDirectory());
  const paths = dirs.map((e) => path.relative(dir, path.join(e.parentPath, e.name)).split(path.sep).join('/'));
  return paths.filter((p) => !paths.some((q) => q.startsWith(`${p}/`))).sort();
}
