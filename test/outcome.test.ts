/**
 * The outcome told plainly (the DAG's summary hook) and the DAG as a picture (Mermaid, DOT), through the CLI as
 * users run it: a Sparkify run on input with a truncated line says how many records it rejected, the rate, the
 * limit and where they are, and its quality verdict, in full, in `trigger --local`, `runs show` and `--json`.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { appendFileSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { createActivities } from '../activities';
import { generateSparkify } from '../activities/sparkify/generate';
import { renderGraph } from '../client/graph';
import { triggerDagRun, waitForRun } from '../client/runs';
import { defineDag } from '../core/dag';
import { summarizeRun } from '../core/summary';
import type { DagRunStatus, DagSnapshot } from '../core/types';
import { getDag } from '../dags';
import { testServices } from './services';
import { withTestWorker } from './support';

const ROOT = path.join(import.meta.dirname, '..');

function cli(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [path.join(ROOT, 'bin', 'tempoflow.js'), ...args],
      { cwd: ROOT, env: { ...process.env, ...env, NO_COLOR: '1', COLUMNS: '60' }, timeout: 240_000 },
      (error, stdout, stderr) =>
        resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout, stderr }),
    );
  });
}

/** Every `a -> b` edge of the DAG, as "a>b". */
const edgesOf = (dag: DagSnapshot) => dag.tasks.flatMap((t) => t.upstream.map((u) => `${u}>${t.id}`)).sort();

describe('the DAG as a picture', () => {
  for (const dag of [getDag('example_fanout'), getDag('sparkify_etl')]) {
    test(`${dag.id}: Mermaid has every task as a node and every dependency as an edge`, () => {
      const text = renderGraph('mermaid', dag);
      assert.match(text, /^flowchart LR\n/);
      const nodes = new Map<string, string>();
      for (const m of text.matchAll(/^ {2}(t\d+)(?:\[\[|\[|\{)"([^"<]+)/gm)) nodes.set(m[1]!, m[2]!);
      assert.deepEqual([...nodes.values()].sort(), dag.tasks.map((t) => t.id).sort());
      const edges = [...text.matchAll(/^ {2}(t\d+) (?:-->|-\.->) (t\d+)$/gm)].map(
        (m) => `${nodes.get(m[1]!)}>${nodes.get(m[2]!)}`,
      );
      assert.deepEqual(edges.sort(), edgesOf(dag));
    });

    test(`${dag.id}: DOT is one digraph with every task and every dependency`, () => {
      const text = renderGraph('dot', dag);
      assert.ok(text.startsWith(`digraph "${dag.id}" {`) && text.endsWith('}'));
      const declared = [...text.matchAll(/^ {2}"([^"]+)" \[label=/gm)].map((m) => m[1]);
      assert.deepEqual(declared.sort(), dag.tasks.map((t) => t.id).sort());
      const edges = [...text.matchAll(/^ {2}"([^"]+)" -> "([^"]+)"/gm)].map((m) => `${m[1]}>${m[2]}`);
      assert.deepEqual(edges.sort(), edgesOf(dag));
      // Balanced quotes on every line: labels with quotes or newlines are escaped.
      for (const line of text.split('\n'))
        assert.equal((line.replace(/\\"/g, '').match(/"/g) ?? []).length % 2, 0, line);
    });
  }

  test('branch, mapped and trigger-rule tasks are marked; odd characters are escaped', () => {
    const dag = defineDag({
      id: 'odd',
      tasks: [
        { id: 'a', activity: 'say "hi"' },
        { id: 'b', activity: 'x', map: { over: 'a' } },
        { id: 'c', activity: 'x', upstream: ['b'], branch: true },
        { id: 'd', activity: 'x', upstream: ['c'], triggerRule: 'all_done' },
      ],
    });
    const mermaid = renderGraph('mermaid', dag);
    assert.match(mermaid, /t0\["a<br\/>say #quot;hi#quot;"\]/);
    assert.match(mermaid, /t1\[\["b<br\/>x<br\/>mapped over a"\]\]/);
    assert.match(mermaid, /t2\{"c<br\/>x<br\/>branch"\}/);
    assert.match(mermaid, /t2 -\.-> t3/);
    const dot = renderGraph('dot', dag);
    assert.match(dot, /"a" \[label="a\\nsay \\"hi\\""\]/);
    assert.match(dot, /"c" -> "d" \[style=dashed, label="all_done"\]/);
  });
});

describe('summaries', () => {
  test('without a hook: the final tasks outputs in full; a hook that throws falls back, saying why', () => {
    const long = 'x'.repeat(500);
    const dag = defineDag({
      id: 'plain',
      tasks: [
        { id: 'a', activity: 'x' },
        { id: 'b', activity: 'x', upstream: ['a'] },
      ],
    });
    const status = {
      dagId: 'plain',
      state: 'success',
      outputs: { a: 1, b: { long } },
      tasks: [],
    } as unknown as DagRunStatus;
    const summary = summarizeRun(dag, status);
    assert.equal(summary.verdict, 'ok');
    assert.deepEqual(summary.sections, [{ title: 'Outputs', rows: [{ label: 'b', value: JSON.stringify({ long }) }] }]);
    const failing = defineDag({
      id: 'failing',
      tasks: [{ id: 'a', activity: 'x' }],
      summary: () => {
        throw new Error('no rows output');
      },
    });
    const fallback = summarizeRun(failing, { ...status, dagId: 'failing' });
    assert.match(JSON.stringify(fallback), /the DAG's summary failed: no rows output/);
  });
});

describe('the outcome of a Sparkify run, told plainly', () => {
  let work: string;
  let input: string;

  before(async () => {
    work = mkdtempSync(path.join(os.tmpdir(), 'tempoflow-outcome-'));
    input = path.join(work, 'input');
    await generateSparkify({ out: input, songs: 40, events: 1500, days: 2, seed: 3 });
    // One truncated record, as an upstream that died mid-write leaves it.
    const logs = path.join(input, 'log_data');
    const file = readdirSync(logs, { recursive: true, withFileTypes: true }).find((e) => e.isFile())!;
    appendFileSync(path.join(file.parentPath, file.name), '{"artist":"Tru","auth":"Logged In","firstN');
  });
  after(() => rmSync(work, { recursive: true, force: true }));

  test('trigger --local ends with rows per table, the reject, its rate, limit and place, and the quality verdict', async () => {
    const lake = path.join(work, 'lake-local');
    const { code, stdout, stderr } = await cli([
      'trigger',
      'sparkify_etl',
      '--local',
      '-p',
      `input=${input}`,
      '-p',
      `output=${lake}`,
    ]);
    assert.equal(code, 0, stderr);
    const summary = stdout.slice(stdout.indexOf('! sparkify_etl published'));
    assert.match(summary, /^! sparkify_etl published [\d,]+ plays to .*lake-local; 1 record rejected$/m);
    for (const table of ['songs', 'artists', 'users', 'time', 'songplays']) {
      assert.match(summary, new RegExp(`^ {4}${table} +[\\d,]+ rows? in [\\d,]+ files?$`, 'm'));
    }
    assert.match(summary, /^ {4}rejected +1 of [\d,]+ records \(0\.\d\d%; limit 1\.00%\)$/m);
    // The whole location, however narrow the terminal (COLUMNS=60): nothing is cut.
    const where = /^ {4}where +(\S+)\/ \(1 file,/m.exec(summary);
    assert.ok(where, summary);
    assert.ok(where[1]!.startsWith(path.join(lake, '_rejects')) && existsSync(where[1]!), where[1]);
    assert.match(summary, /^ {4}verdict +passed \(\d+ checks\)$/m);
    const report = /^ {4}report +(\S+quality\.json)$/m.exec(summary);
    assert.ok(report && existsSync(report[1]!), summary);
    assert.doesNotMatch(stdout, /…/);
  });

  test('runs show tells the same outcome later, --json carries it whole, --format shows the states', async () => {
    const { temporal } = await testServices();
    const env = { TEMPORAL_ADDRESS: temporal.address, TEMPORAL_NAMESPACE: temporal.namespace };
    const lake = path.join(work, 'lake-worker');
    const dag = getDag('sparkify_etl');
    const runId = await withTestWorker(
      { dags: [dag], activities: createActivities() },
      async ({ client, taskQueue }) => {
        const run = await triggerDagRun(client, dag, { taskQueue, params: { input, output: lake } });
        assert.equal((await waitForRun(run.handle)).state, 'success');
        return run.runId;
      },
    );

    const shown = await cli(['runs', 'show', runId], env);
    assert.equal(shown.code, 0, shown.stderr);
    assert.match(shown.stdout, /^ {4}rejected +1 of [\d,]+ records \(0\.\d\d%; limit 1\.00%\)$/m);
    assert.match(shown.stdout, /^ {4}verdict +passed/m);

    const json = await cli(['runs', 'show', runId, '--json'], env);
    const status = JSON.parse(json.stdout) as DagRunStatus;
    const rows = status.summary!.sections.flatMap((s) => s.rows);
    assert.match(
      rows.find((r) => r.label === 'where')!.value,
      new RegExp(`^${lake.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}/_rejects/`),
    );
    assert.equal(status.summary!.verdict, 'warning');

    const mermaid = await cli(['runs', 'show', runId, '--format', 'mermaid'], env);
    assert.equal(mermaid.code, 0, mermaid.stderr);
    assert.match(mermaid.stdout, /^flowchart LR$/m);
    const classed = [...mermaid.stdout.matchAll(/^ {2}class t\d+ (\w+)$/gm)].map((m) => m[1]);
    assert.equal(classed.length, dag.tasks.length);
    assert.ok(
      classed.every((state) => state === 'success'),
      classed.join(','),
    );
    const dot = await cli(['runs', 'show', runId, '--format', 'dot'], env);
    assert.equal([...dot.stdout.matchAll(/fillcolor="#c8e6c9"/g)].length, dag.tasks.length);
  });
});
