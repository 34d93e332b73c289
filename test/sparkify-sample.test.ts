import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { createStore } from '../storage';
import { readPublished, runSparkifyPipeline } from '../activities/sparkify';

// The shared data folder sits beside the checkout (../shared), in development and in CI.
const SAMPLE =
  process.env.TEMPOFLOW_UDACITY_SAMPLE ??
  path.resolve(import.meta.dirname, '..', '..', 'shared', 'data', 'udacity-sample');
const missing =
  existsSync(path.join(SAMPLE, 'song_data')) && existsSync(path.join(SAMPLE, 'log_data'))
    ? false
    : `the Udacity sample is not at ${SAMPLE} (song_data/ and log_data/): skipped`;

void test('the Udacity sample gives the known star schema', { skip: missing }, async () => {
  const output = await fs.mkdtemp(path.join(os.tmpdir(), 'tempoflow-sample-'));
  const store = createStore();
  const run = await runSparkifyPipeline({ store, input: SAMPLE, output, runId: 'sample-run' });
  assert.equal(run.list.songFiles, 71);
  assert.equal(run.list.logFiles, 30);
  assert.deepEqual(run.build.rows, { songs: 71, artists: 69, users: 96, time: 6813, songplays: 6820 });
  assert.equal(run.events.reduce((a, r) => a + r.rejected, 0) + run.songs.reduce((a, r) => a + r.rejected, 0), 0);
  assert.ok(run.quality.passed);

  const songplays = await readPublished(store, output, 'songplays');
  assert.equal(songplays.length, 6820);
  const matched = songplays.filter((r) => r.song_id !== null);
  assert.equal(matched.length, 1);
  assert.equal(matched[0]?.song_id, 'SOZCTXZ12AB0182364');
  assert.equal(matched[0]?.artist_id, 'AR5KOSW1187FB35FF4');
  assert.equal(matched[0]?.user_id, 15n);
  assert.equal((await readPublished(store, output, 'users')).length, 96);
  assert.equal((await readPublished(store, output, 'time')).length, 6813);
  await fs.rm(output, { recursive: true, force: true });
});
