/**
 * `tempoflow sparkify report` (issue 11 item 8): a lake published on the real S3 server, the page made by the
 * CLI, opened in Debian's Chromium with every network request refused. The numbers the page shows and charts
 * are compared with the test's own computation over the published rows.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { pathToFileURL } from 'node:url';
import { chromium } from 'playwright-core';
import type { BrowserContext, Page } from 'playwright-core';
import { generateSparkify, readPublished, runSparkifyPipeline } from '../activities/sparkify';
import { renderReport, type ReportData } from '../activities/sparkify/report';
import { createStore, type Store } from '../storage';
import { createTestBucket, s3ClientForTests, s3EnvForTests } from './services';
import { cliInProcess as cli } from './support';

const CHROMIUM = process.env.TEMPOFLOW_CHROMIUM ?? '/usr/bin/chromium';

/** Opens a report file with every request but the file itself refused; returns the page and what it tried. */
async function openOffline(browser: BrowserContext, file: string) {
  const page = await browser.newPage();
  const refused: string[] = [];
  const errors: string[] = [];
  await page.route('**/*', (route) => {
    const url = route.request().url();
    if (url === pathToFileURL(file).href) return route.continue();
    refused.push(url);
    return route.abort();
  });
  page.on('console', (m) => void (m.type() === 'error' && errors.push(m.text())));
  page.on('pageerror', (e) => void errors.push(String(e)));
  await page.goto(pathToFileURL(file).href);
  return { page, refused, errors };
}

/** Each chart's datasets as Chart.js holds them (null when no chart was made on that canvas). */
function chartData(page: Page, id: string): Promise<number[][] | null> {
  return page.$eval(`#${id}`, (canvas) => {
    type ChartOn = { data: { datasets: { data: unknown[] }[] } };
    const Chart = (globalThis as unknown as { Chart: { getChart(el: unknown): ChartOn | undefined } }).Chart;
    const chart = Chart.getChart(canvas);
    return chart ? chart.data.datasets.map((d) => d.data.map(Number)) : null;
  });
}

/** The text of each cell of a table's body, row by row (no DOM types here: the page's elements, structurally). */
const cells = (page: Page, table: string): Promise<string[][]> =>
  page.$$eval(`#${table} tbody tr`, (trs) =>
    trs.map((tr) => {
      const row = tr as unknown as { querySelectorAll(s: string): ArrayLike<{ textContent: string | null }> };
      return Array.from(row.querySelectorAll('td'), (td) => td.textContent ?? '');
    }),
  );

void describe('sparkify report', () => {
  let browser: BrowserContext;
  let store: Store;
  let s3Destroy: () => void;
  let lake: string;
  const dir = mkdtempSync(join(tmpdir(), 'tempoflow-report-'));
  let addedEnv: Record<string, string> = {};
  const savedEnv: Record<string, string | undefined> = {};

  before(async () => {
    assert.ok(existsSync(CHROMIUM), `Chromium not found at ${CHROMIUM}: run \`apt-get install -y chromium\``);
    // The CLI builds its S3 client from the environment, as for a user.
    addedEnv = await s3EnvForTests();
    for (const [key, value] of Object.entries(addedEnv)) {
      savedEnv[key] = process.env[key];
      process.env[key] = value;
    }
    const s3 = await s3ClientForTests();
    s3Destroy = () => s3.destroy();
    store = createStore({ s3Client: s3 });
    const input = `s3://${await createTestBucket('report-in')}/udacity-dend`;
    lake = `s3://${await createTestBucket('report-lake')}/lake`;
    await generateSparkify({ out: input, songs: 120, events: 4000, days: 5, seed: 17, store });
    await runSparkifyPipeline({ store, input, output: lake, runId: 'report-run' });
    browser = await chromium.launchPersistentContext(join(dir, 'profile'), {
      executablePath: CHROMIUM,
      headless: true,
      viewport: { width: 1200, height: 900 },
      args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking'],
    });
  });

  after(async () => {
    await browser?.close();
    s3Destroy?.();
    for (const key of Object.keys(addedEnv)) {
      if (savedEnv[key] === undefined) delete process.env[key];
      else process.env[key] = savedEnv[key];
    }
    rmSync(dir, { recursive: true, force: true });
  });

  it("renders offline, and its charts and tables equal the published lake's numbers", async () => {
    const file = join(dir, 'report.html');
    const made = await cli(['sparkify', 'report', '--lake', lake, '--out', file]);
    assert.equal(made.code, 0, made.stderr);
    assert.match(made.stdout, new RegExp(`report of ${lake} written to ${file}`));

    // The test's own numbers, from the rows the lake publishes.
    const plays = await readPublished(store, lake, 'songplays');
    const songs = new Map((await readPublished(store, lake, 'songs')).map((s) => [s.song_id as string, s]));
    const artists = new Map((await readPublished(store, lake, 'artists')).map((a) => [a.artist_id as string, a]));
    const startOf = (p: Record<string, unknown>) => p.start_time as Date;
    const byHour = Array.from({ length: 24 }, (_, h) => plays.filter((p) => startOf(p).getUTCHours() === h).length);
    const byWeekday = Array.from(
      { length: 7 },
      (_, d) => plays.filter((p) => (startOf(p).getUTCDay() + 6) % 7 === d).length,
    );
    const matched = plays.filter((p) => p.song_id !== null).length;
    assert.ok(matched > 0 && matched < plays.length, 'some plays match a song, some do not');
    const perSong = new Map<string, number>();
    for (const p of plays)
      if (p.song_id !== null) perSong.set(p.song_id as string, (perSong.get(p.song_id as string) ?? 0) + 1);
    const topSongs = [...perSong]
      .map(([id, n]) => ({ id, title: songs.get(id)!.title as string, n }))
      .sort((a, b) => b.n - a.n || (a.title < b.title ? -1 : a.title > b.title ? 1 : 0) || (a.id < b.id ? -1 : 1))
      .slice(0, 10);
    const perArtist = new Map<string, number>();
    for (const p of plays)
      if (p.artist_id !== null) perArtist.set(p.artist_id as string, (perArtist.get(p.artist_id as string) ?? 0) + 1);
    const topArtistCounts = [...perArtist.values()].sort((a, b) => b - a).slice(0, 10);
    const perUser = new Map<number, number>();
    for (const p of plays) perUser.set(Number(p.user_id), (perUser.get(Number(p.user_id)) ?? 0) + 1);
    const topUserCounts = [...perUser.values()].sort((a, b) => b - a).slice(0, 10);

    const { page, refused, errors } = await openOffline(browser, file);
    assert.deepEqual(refused, [], 'the page asks the network for nothing');
    assert.deepEqual(errors, [], 'no script errors');
    assert.equal(await page.textContent('#kpi-plays'), plays.length.toLocaleString('en-US'));
    assert.equal(await page.textContent('#kpi-matched'), `${((100 * matched) / plays.length).toFixed(1)}%`);

    assert.deepEqual(await chartData(page, 'chart-hour'), [byHour]);
    assert.deepEqual(await chartData(page, 'chart-weekday'), [byWeekday]);
    assert.deepEqual(await chartData(page, 'chart-matched'), [[matched, plays.length - matched]]);
    const level = (await chartData(page, 'chart-level'))!;
    assert.equal(level.length, 2, 'a free and a paid line');
    const levelTotal = level.flat().reduce((a, b) => a + b, 0);
    assert.equal(levelTotal, plays.filter((p) => p.level === 'free' || p.level === 'paid').length);
    assert.equal(
      level[1]!.reduce((a, b) => a + b, 0),
      plays.filter((p) => p.level === 'paid').length,
    );

    const shownSongs = await cells(page, 'top-songs');
    assert.deepEqual(
      shownSongs.map((r) => [r[0], Number(r[2]!.replace(/,/g, ''))]),
      topSongs.map((s) => [s.title, s.n]),
    );
    assert.equal(shownSongs[0]![1], artists.get(songs.get(topSongs[0]!.id)!.artist_id as string)!.name);
    const shownArtists = await cells(page, 'top-artists');
    assert.deepEqual(
      shownArtists.map((r) => Number(r[1]!.replace(/,/g, ''))),
      topArtistCounts,
    );
    const shownUsers = await cells(page, 'top-users');
    assert.deepEqual(
      shownUsers.map((r) => Number(r[3]!.replace(/,/g, ''))),
      topUserCounts,
    );
    assert.equal(Number(shownUsers[0]![0]), [...perUser].sort((a, b) => b[1] - a[1] || a[0] - b[0])[0]![0]);
    assert.match(
      (await page.textContent('#quality-verdict'))!,
      new RegExp(`^passed: 15 of 15 checks passed \\(run report-run; ${lake}/_runs/report-run/quality\\.json\\)$`),
    );
    await page.close();
  });

  it('shows text from the lake as text: markup in a title cannot end the page or run', async () => {
    const nasty = `</script><img src=x onerror="document.title='owned'"> & "Co" <!--`;
    const data: ReportData = {
      lake: 's3://bucket/<lake>',
      generatedAt: '2026-11-28T00:00:00.000Z',
      rows: { songs: 1, artists: 1, users: 1, time: 1, songplays: 2 },
      plays: 2,
      matchedPlays: 1,
      byHour: Array.from({ length: 24 }, (_, h) => (h === 3 ? 2 : 0)),
      byWeekday: [2, 0, 0, 0, 0, 0, 0],
      byDay: [{ day: '2018-11-05', free: 1, paid: 1 }],
      topSongs: [{ title: nasty, artist: nasty, plays: 1 }],
      topArtists: [{ artist: nasty, plays: 1 }],
      topUsers: [{ userId: 7, name: nasty, level: 'paid', plays: 2 }],
    };
    const file = join(dir, 'escaped.html');
    await writeFile(file, renderReport(data));
    const { page, refused, errors } = await openOffline(browser, file);
    assert.deepEqual(errors, []);
    assert.deepEqual(refused, []);
    assert.equal(await page.$$eval('img', (imgs) => imgs.length), 0, 'no element from the data');
    assert.notEqual(await page.title(), 'owned');
    assert.deepEqual((await cells(page, 'top-songs'))[0], [nasty, nasty, '1']);
    const blob = await page.$eval(
      '#report-data',
      (el) => JSON.parse((el as unknown as { textContent: string }).textContent) as unknown,
    );
    assert.deepEqual(blob, data, 'the data blob reads back whole');
    assert.deepEqual(await chartData(page, 'chart-hour'), [data.byHour]);
    await page.close();
  });

  it('the same lake in a local folder gives the same numbers', async () => {
    const localLake = join(dir, 'local-lake');
    await store.downloadPrefix(lake, localLake);
    const numbers = async (uri: string) => {
      const res = await cli(['sparkify', 'report', '--lake', uri, '--out', join(dir, 'numbers.html'), '--json']);
      assert.equal(res.code, 0, res.stderr);
      const { lake: named, generatedAt, quality, ...rest } = JSON.parse(res.stdout) as ReportData & { out: string };
      assert.equal(named, uri);
      assert.ok(!Number.isNaN(Date.parse(generatedAt)));
      return { ...rest, quality: quality?.report };
    };
    const fromS3 = await numbers(lake);
    assert.ok(fromS3.plays > 0 && fromS3.quality?.passed);
    assert.deepEqual(await numbers(localLake), fromS3);
  });

  it('an --out that cannot be written: the error names the path, exit 2, no stack trace', async () => {
    // A folder that does not exist: refused before the lake is read (the lake named here does not exist either).
    const missing = join(dir, 'no-such-folder', 'report.html');
    const early = await cli(['sparkify', 'report', '--lake', join(dir, 'nowhere'), '--out', missing]);
    assert.equal(early.code, 2);
    assert.match(early.stderr, new RegExp(`cannot write the report to ${missing}: .*ENOENT`));
    assert.doesNotMatch(early.stderr, /\n\s+at /);
    // A path that is a folder: found only when the page is written.
    const late = await cli(['sparkify', 'report', '--lake', lake, '--out', dir]);
    assert.equal(late.code, 2);
    assert.match(late.stderr, new RegExp(`cannot write the report to ${dir}: .*EISDIR`));
    assert.doesNotMatch(late.stderr, /\n\s+at /);
  });

  it('a lake with nothing published: a clear error naming it, exit 2, no stack trace', async () => {
    const empty = join(dir, 'no-lake');
    const res = await cli(['sparkify', 'report', '--lake', empty, '--out', join(dir, 'x.html')]);
    assert.equal(res.code, 2);
    assert.match(res.stderr, new RegExp(`no published Sparkify lake at ${empty}: it has no songplays table`));
    assert.doesNotMatch(res.stderr, /\n\s+at /);
    assert.ok(!existsSync(join(dir, 'x.html')), 'no page for a lake that is not there');
  });
});
