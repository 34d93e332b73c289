/**
 * The analytics team's view of a published Sparkify lake: DuckDB queries over the tables as their markers name
 * them (never a publish half done), rendered as one self-contained HTML page with Chart.js inlined, so it opens
 * anywhere without network access.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import type { DuckDBConnection } from '@duckdb/node-api';
import { safeLocalPath } from '../../storage/local-path';
import type { Store } from '../../storage/store';
import { joinUri } from '../../storage/uri';
import { type DuckDbOptions, withDuckDb, withScratch } from '../../worker/duckdb';
import { InputDataError } from './errors';
import { publishedFiles, readJsonIfExists, readMarker } from './lake-files';
import { type TableName, TABLES, runPaths } from './paths';
import { downloadAll } from './transfer';
import { loadTable } from './validate';

/** A lake with no published table to report on. */
export class ReportError extends InputDataError {
  override name = 'ReportError';
}

export interface QualityReport {
  runId: string;
  passed: boolean;
  checks: { name: string; passed: boolean; message?: string }[];
}

/** Everything the page shows: plain numbers, so tests compare them with their own queries. */
export interface ReportData {
  lake: string;
  generatedAt: string;
  /** Rows per published table. */
  rows: Record<TableName, number>;
  plays: number;
  matchedPlays: number;
  /** Plays per hour of day (UTC), index 0–23. */
  byHour: number[];
  /** Plays per ISO weekday, index 0 = Monday … 6 = Sunday. */
  byWeekday: number[];
  /** Plays per day by level. */
  byDay: { day: string; free: number; paid: number }[];
  topSongs: { title: string; artist: string; plays: number }[];
  topArtists: { artist: string; plays: number }[];
  topUsers: { userId: number; name: string; level: string; plays: number }[];
  /** The quality report of the run that last published `songplays`, with where it is. */
  quality?: { uri: string; report: QualityReport };
}

const TOP = 10;

export async function buildReport(args: { store: Store; lake: string; duckdb?: DuckDbOptions }): Promise<ReportData> {
  const { store, lake } = args;
  const settings = args.duckdb ?? {};
  const songplaysMarker = await readMarker(store, joinUri(lake, 'songplays'));
  if (!songplaysMarker) {
    throw new ReportError(
      `no published Sparkify lake at ${lake}: it has no songplays table (${joinUri(lake, 'songplays', '_run.json')} ` +
        'is missing); run sparkify_etl with -p output=' +
        lake +
        ' first',
    );
  }
  const qualityUri = joinUri(runPaths(lake, songplaysMarker.runId).runMeta, 'quality.json');
  const qualityReport = await readJsonIfExists<QualityReport>(store, qualityUri);
  return withScratch(settings, 'report', async (dir) => {
    for (const table of TABLES) {
      const objects = (await publishedFiles(store, joinUri(lake, table))).map((o) => ({
        o,
        local: safeLocalPath(path.join(dir, table), o.key),
      }));
      await downloadAll(store, objects);
    }
    const data = await withDuckDb(settings, dir, async (conn) => {
      for (const table of TABLES) await loadTable(conn, table, path.join(dir, table));
      return queryLake(conn);
    });
    return {
      lake,
      generatedAt: new Date().toISOString(),
      ...data,
      ...(qualityReport ? { quality: { uri: qualityUri, report: qualityReport } } : {}),
    };
  });
}

async function rows<T>(conn: DuckDBConnection, sql: string): Promise<T[]> {
  return (await conn.runAndReadAll(sql)).getRowObjectsJS() as T[];
}

async function queryLake(conn: DuckDBConnection): Promise<Omit<ReportData, 'lake' | 'generatedAt' | 'quality'>> {
  const counts = {} as Record<TableName, number>;
  for (const table of TABLES) {
    const [row] = await rows<{ n: bigint }>(conn, `SELECT count(*) AS n FROM "${table}"`);
    counts[table] = Number(row!.n);
  }
  const [totals] = await rows<{ plays: bigint; matched: bigint }>(
    conn,
    'SELECT count(*) AS plays, count(song_id) AS matched FROM songplays',
  );
  const byHour = new Array<number>(24).fill(0);
  for (const r of await rows<{ h: bigint; n: bigint }>(
    conn,
    'SELECT hour(start_time) AS h, count(*) AS n FROM songplays GROUP BY h',
  )) {
    byHour[Number(r.h)] = Number(r.n);
  }
  const byWeekday = new Array<number>(7).fill(0);
  for (const r of await rows<{ d: bigint; n: bigint }>(
    conn,
    'SELECT isodow(start_time) AS d, count(*) AS n FROM songplays GROUP BY d',
  )) {
    byWeekday[Number(r.d) - 1] = Number(r.n);
  }
  const byDay = (
    await rows<{ day: string; free: bigint; paid: bigint }>(
      conn,
      `SELECT strftime(CAST(start_time AS DATE), '%Y-%m-%d') AS day,
              count(*) FILTER (WHERE level = 'free') AS free, count(*) FILTER (WHERE level = 'paid') AS paid
       FROM songplays GROUP BY day ORDER BY day`,
    )
  ).map((r) => ({ day: r.day, free: Number(r.free), paid: Number(r.paid) }));
  const topSongs = (
    await rows<{ title: string; artist: string; plays: bigint }>(
      conn,
      `SELECT s.title, a.name AS artist, count(*) AS plays
       FROM songplays p JOIN songs s ON s.song_id = p.song_id LEFT JOIN artists a ON a.artist_id = p.artist_id
       GROUP BY s.song_id, s.title, a.name ORDER BY plays DESC, s.title, s.song_id LIMIT ${TOP}`,
    )
  ).map((r) => ({ title: r.title, artist: r.artist ?? '', plays: Number(r.plays) }));
  const topArtists = (
    await rows<{ artist: string; plays: bigint }>(
      conn,
      `SELECT a.name AS artist, count(*) AS plays
       FROM songplays p JOIN artists a ON a.artist_id = p.artist_id
       GROUP BY a.artist_id, a.name ORDER BY plays DESC, a.name, a.artist_id LIMIT ${TOP}`,
    )
  ).map((r) => ({ artist: r.artist, plays: Number(r.plays) }));
  const topUsers = (
    await rows<{ user_id: bigint; name: string; level: string; plays: bigint }>(
      conn,
      `SELECT p.user_id, trim(concat_ws(' ', u.first_name, u.last_name)) AS name, coalesce(u.level, '') AS level,
              count(*) AS plays
       FROM songplays p LEFT JOIN users u ON u.user_id = p.user_id
       GROUP BY p.user_id, u.first_name, u.last_name, u.level ORDER BY plays DESC, p.user_id LIMIT ${TOP}`,
    )
  ).map((r) => ({ userId: Number(r.user_id), name: r.name, level: r.level, plays: Number(r.plays) }));
  return {
    rows: counts,
    plays: Number(totals!.plays),
    matchedPlays: Number(totals!.matched),
    byHour,
    byWeekday,
    byDay,
    topSongs,
    topArtists,
    topUsers,
  };
}

/** Text from the lake as HTML text: titles and names can hold `<`, `&` and quotes. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

/** JSON inside a `<script>` element: `</script>` or `<!--` in the data must not end or change it. */
function scriptJson(value: unknown): string {
  return JSON.stringify(value)
    .replace(/</g, '\\u003c')
    .replace(/\u2028/g, '\\u2028')
    .replace(/\u2029/g, '\\u2029');
}

let chartJs: string | undefined;
/** Chart.js's UMD build, inlined into the page: the report needs no network. */
function chartLibrary(): string {
  // The package exports no subpath for its UMD build: it sits beside the entry point, in dist/.
  const entry = createRequire(import.meta.url).resolve('chart.js');
  chartJs ??= readFileSync(path.join(path.dirname(entry), 'chart.umd.min.js'), 'utf8');
  // Its text must not close the script element that holds it.
  return chartJs.replace(/<\/script/gi, '<\\/script');
}

const share = (part: number, whole: number) => (whole ? `${((100 * part) / whole).toFixed(1)}%` : '–');
const num = (n: number) => n.toLocaleString('en-US');

function table(headers: string[], body: (string | number)[][], id: string): string {
  const head = headers.map((h) => `<th>${escapeHtml(h)}</th>`).join('');
  const rowsHtml = body
    .map(
      (r) =>
        `<tr>${r.map((c) => (typeof c === 'number' ? `<td class="n">${num(c)}</td>` : `<td>${escapeHtml(c)}</td>`)).join('')}</tr>`,
    )
    .join('\n');
  return `<table id="${id}"><thead><tr>${head}</tr></thead><tbody>\n${rowsHtml}\n</tbody></table>`;
}

export function renderReport(data: ReportData): string {
  const quality = data.quality
    ? `<p id="quality-verdict" class="${data.quality.report.passed ? 'ok' : 'bad'}">${
        data.quality.report.passed ? 'passed' : 'FAILED'
      }: ${data.quality.report.checks.filter((c) => c.passed).length} of ${data.quality.report.checks.length} checks passed (run ${escapeHtml(data.quality.report.runId)}; <code>${escapeHtml(data.quality.uri)}</code>)</p>
      ${table(
        ['check', 'result', 'detail'],
        data.quality.report.checks.map((c) => [c.name, c.passed ? 'passed' : 'failed', c.message ?? '']),
        'quality-checks',
      )}`
    : '<p id="quality-verdict">no quality report found for the run that published songplays</p>';
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:">
<title>Sparkify listening report — ${escapeHtml(data.lake)}</title>
<style>
  body { font: 14px/1.45 system-ui, sans-serif; margin: 2rem auto; max-width: 1100px; color: #222; padding: 0 1rem; }
  h1 { font-size: 1.5rem; margin-bottom: 0.2rem; } h2 { font-size: 1.15rem; margin-top: 2rem; }
  .meta { color: #666; } .grid { display: grid; grid-template-columns: 1fr 1fr; gap: 1.5rem; }
  .card { border: 1px solid #ddd; border-radius: 6px; padding: 0.8rem 1rem; }
  .kpis { display: flex; gap: 2rem; flex-wrap: wrap; } .kpi b { display: block; font-size: 1.4rem; }
  table { border-collapse: collapse; width: 100%; } th, td { text-align: left; padding: 0.25rem 0.5rem; border-bottom: 1px solid #eee; }
  td.n { text-align: right; font-variant-numeric: tabular-nums; } .ok { color: #17702f; } .bad { color: #b00020; font-weight: bold; }
  canvas { max-height: 280px; }
</style>
</head>
<body>
<h1>Sparkify listening report</h1>
<p class="meta">Lake <code id="lake">${escapeHtml(data.lake)}</code> · made ${escapeHtml(data.generatedAt)}</p>
<div class="kpis card">
  <div class="kpi"><b id="kpi-plays">${num(data.plays)}</b>plays</div>
  <div class="kpi"><b id="kpi-matched">${share(data.matchedPlays, data.plays)}</b>matched to a song (${num(data.matchedPlays)})</div>
  <div class="kpi"><b id="kpi-users">${num(data.rows.users)}</b>users</div>
  <div class="kpi"><b>${num(data.rows.songs)}</b>songs</div>
  <div class="kpi"><b>${num(data.rows.artists)}</b>artists</div>
</div>
<div class="grid">
  <div class="card"><h2>Plays by hour of day (UTC)</h2><canvas id="chart-hour"></canvas></div>
  <div class="card"><h2>Plays by weekday</h2><canvas id="chart-weekday"></canvas></div>
  <div class="card"><h2>Free and paid plays per day</h2><canvas id="chart-level"></canvas></div>
  <div class="card"><h2>Plays matched to a song</h2><canvas id="chart-matched"></canvas></div>
</div>
<div class="grid">
  <div class="card"><h2>Top songs (matched plays)</h2>${table(
    ['song', 'artist', 'plays'],
    data.topSongs.map((s) => [s.title, s.artist, s.plays]),
    'top-songs',
  )}</div>
  <div class="card"><h2>Top artists (matched plays)</h2>${table(
    ['artist', 'plays'],
    data.topArtists.map((a) => [a.artist, a.plays]),
    'top-artists',
  )}</div>
</div>
<div class="card"><h2>Most active users</h2>${table(
    ['user', 'name', 'level', 'plays'],
    data.topUsers.map((u) => [String(u.userId), u.name, u.level, u.plays]),
    'top-users',
  )}</div>
<h2>Tables</h2>
${table(
  ['table', 'rows'],
  TABLES.map((t) => [t, data.rows[t]]),
  'table-rows',
)}
<h2>Latest quality report</h2>
${quality}
<script type="application/json" id="report-data">${scriptJson(data)}</script>
<script>${chartLibrary()}</script>
<script>
(function () {
  var data = JSON.parse(document.getElementById('report-data').textContent);
  var common = { animation: false, responsive: true, plugins: { legend: { display: false } } };
  function bar(id, labels, values, label) {
    new Chart(document.getElementById(id), { type: 'bar', data: { labels: labels,
      datasets: [{ label: label, data: values, backgroundColor: '#3b6ea8' }] }, options: common });
  }
  bar('chart-hour', data.byHour.map(function (_, h) { return String(h).padStart(2, '0'); }), data.byHour, 'plays');
  bar('chart-weekday', ['Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat', 'Sun'], data.byWeekday, 'plays');
  new Chart(document.getElementById('chart-level'), { type: 'line', data: {
    labels: data.byDay.map(function (d) { return d.day; }),
    datasets: [
      { label: 'free', data: data.byDay.map(function (d) { return d.free; }), borderColor: '#999', backgroundColor: '#999' },
      { label: 'paid', data: data.byDay.map(function (d) { return d.paid; }), borderColor: '#17702f', backgroundColor: '#17702f' }
    ] }, options: { animation: false, responsive: true } });
  new Chart(document.getElementById('chart-matched'), { type: 'doughnut', data: {
    labels: ['matched to a song', 'not matched'],
    datasets: [{ data: [data.matchedPlays, data.plays - data.matchedPlays], backgroundColor: ['#3b6ea8', '#ddd'] }] },
    options: { animation: false, responsive: true } });
})();
</script>
</body>
</html>
`;
}
