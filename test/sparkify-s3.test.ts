import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { S3Client } from '@aws-sdk/client-s3';
import { createStore, type Store } from '../storage';
import {
  TABLES,
  generateSparkify,
  readPublished,
  runSparkifyPipeline,
  runToken,
  type GenerateExpectations,
  type TableName,
} from '../activities/sparkify';
import { createTestBucket, s3ClientForTests } from './services';

/** The test S3 server (versitygw) from test/services.ts, with fresh buckets. */
async function startS3(): Promise<{ client: S3Client; input: string; output: string; stop: () => Promise<void> }> {
  const client = await s3ClientForTests();
  const [inBucket, lakeBucket] = [await createTestBucket('sparkify-in'), await createTestBucket('sparkify-lake')];
  return {
    client,
    input: `s3://${inBucket}/udacity-dend`,
    output: `s3://${lakeBucket}/lake`,
    stop: async () => client.destroy(),
  };
}

void describe('Sparkify on S3 (versitygw)', () => {
  let s3: Awaited<ReturnType<typeof startS3>>;
  let store: Store;
  let exp: GenerateExpectations;
  let first: Record<TableName, Record<string, unknown>[]>;
  let input: string;
  let output: string;
  const lake = async () => {
    const out = {} as Record<TableName, Record<string, unknown>[]>;
    for (const t of TABLES) out[t] = await readPublished(store, output, t);
    return out;
  };

  before(async () => {
    s3 = await startS3();
    ({ input, output } = s3);
    store = createStore({ s3Client: s3.client });
    exp = await generateSparkify({ out: input, songs: 700, events: 8000, days: 3, seed: 21, duplicates: 3, store });
  });
  after(async () => s3?.stop());

  void test('S3 in, S3 out: exact counts, two song chunks', async () => {
    const downloaded: string[] = [];
    const counting: Store = { ...store, download: (uri, file) => (downloaded.push(uri), store.download(uri, file)) };
    const run = await runSparkifyPipeline({
      store: counting,
      input,
      output,
      runId: 'scheduled__2018-11-03',
      songChunkFiles: 500,
    });
    assert.deepEqual(
      downloaded.filter((uri) => uri.includes('/_staging/')),
      [],
      'each task finds what the previous one wrote on this worker in the run cache',
    );
    assert.equal(run.list.songChunks.length, 2, '700 song files in chunks of 500');
    assert.deepEqual(run.build.rows, {
      songs: exp.songs,
      artists: exp.artists,
      users: exp.users,
      time: exp.startTimes,
      songplays: exp.nextSongEvents,
    });
    first = await lake();
    assert.equal(first.songplays.filter((p) => p.song_id !== null).length, exp.matchedPlays);
    const keys = (await store.list(output)).map((o) => o.key);
    assert.ok(keys.includes('songs/_run.json'));
    const songFiles = keys.filter((k) => k.startsWith('songs/') && k.endsWith('.parquet'));
    assert.ok(
      songFiles.every((k) => /^songs\/year=\d+\/artist_id=AR[A-Z0-9]+\/part-[0-9a-f]+-[0-9a-f]+-\d+\.parquet$/.test(k)),
    );
    const partitions = new Set(first.songs.map((s) => `${String(s.year)}/${String(s.artist_id)}`));
    assert.equal(songFiles.length, partitions.size, 'one file per year and artist, laid out by publish');
    assert.ok(!keys.some((k) => k.startsWith('_staging/')));
  });

  void test('a second run replaces the tables with identical ones and removes the old files', async () => {
    const second = await runSparkifyPipeline({ store, input, output, runId: 'manual__2' });
    assert.ok(second.list.songsReusedFrom, 'the song input is unchanged: songs and artists are kept');
    assert.deepEqual(await lake(), first);
    const parquet = (await store.list(output)).filter(
      (o) => o.key.endsWith('.parquet') && !o.key.startsWith('_') && !/^(songs|artists)\//.test(o.key),
    );
    assert.deepEqual([...new Set(parquet.map((o) => /part-([0-9a-f]+)-/.exec(o.key)?.[1]))], [runToken('manual__2')]);
    const marker = JSON.parse((await store.read(`${output}/songplays/_run.json`)).toString()) as {
      runId: string;
      files: string[];
    };
    assert.equal(marker.runId, 'manual__2');
    assert.deepEqual(
      marker.files.sort(),
      parquet
        .filter((o) => o.key.startsWith('songplays/'))
        .map((o) => o.key.slice('songplays/'.length))
        .sort(),
    );
  });

  void test('a publish that fails half way leaves the previous lake as it was', async () => {
    const other = input.replace(/udacity-dend$/, 'other');
    await generateSparkify({ out: other, songs: 40, events: 1000, days: 1, seed: 99, store });
    // The 20th file put into the lake (copied from staging, or moved from the worker's layout) fails.
    let puts = 0;
    const put = () => {
      if (++puts === 20) throw new Error('S3 said no');
    };
    const flaky: Store = {
      ...store,
      copy: async (from, to) => {
        put();
        return store.copy(from, to);
      },
      move: async (from, to) => {
        put();
        return store.move(from, to);
      },
    };
    const keysBefore = (await store.list(output)).map((o) => o.key);
    await assert.rejects(runSparkifyPipeline({ store: flaky, input: other, output, runId: 'failing' }), /S3 said no/);
    assert.deepEqual(await lake(), first);
    const afterKeys = (await store.list(output)).map((o) => o.key).filter((k) => !k.startsWith('_'));
    assert.deepEqual(
      afterKeys,
      keysBefore.filter((k) => !k.startsWith('_')),
      'no new file is left in the tables',
    );
  });
});
