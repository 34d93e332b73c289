/** Project files: found, loaded (TypeScript included), and refused with errors that name the file. */
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { scanArgs } from '../client/cli';
import { defineDag } from '../core/dag';
import { defineProject, findDag, ProjectError } from '../core/project';
import { UnknownDagError } from '../core/errors';
import { loadProject, resolveProjectFile } from '../worker/load-project';

const BIN = fileURLToPath(new URL('../bin/tempoflow.js', import.meta.url));
const CORE_PROJECT = pathToFileURL(fileURLToPath(new URL('../core/project.ts', import.meta.url))).href;
const CORE_DAG = pathToFileURL(fileURLToPath(new URL('../core/dag.ts', import.meta.url))).href;

const root = mkdtempSync(path.join(os.tmpdir(), 'tempoflow-project-'));
after(() => rmSync(root, { recursive: true, force: true }));

/** A folder holding a project file with `source` (an ES module package, as `tempoflow init` makes). */
function projectDir(name: string, source: string, file = 'tempoflow.config.ts'): string {
  const dir = path.join(root, name);
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ type: 'module' }));
  writeFileSync(path.join(dir, file), source);
  return dir;
}

const GOOD = `import { defineProject } from '${CORE_PROJECT}';
import { defineDag } from '${CORE_DAG}';
const greeting: string = 'hi';
export default defineProject({
  dags: [defineDag({ id: 'only', tasks: [{ id: 'a', activity: 'say' }] })],
  activities: () => ({ say: async () => greeting }),
  worker: { taskQueue: 'from-project' },
});
`;

function cli(args: string[], cwd: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...args], { cwd, env: { ...process.env, NO_COLOR: '1' } }, (err, stdout, stderr) =>
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr }),
    );
  });
}

void describe('project files', () => {
  void test('a TypeScript project file loads, from its folder or its path', async () => {
    const dir = projectDir('good', GOOD);
    assert.equal(resolveProjectFile(undefined, dir), path.join(dir, 'tempoflow.config.ts'));
    assert.equal(resolveProjectFile(dir, root), path.join(dir, 'tempoflow.config.ts'));
    const project = await loadProject(resolveProjectFile(dir));
    assert.deepEqual(
      project.dags.map((d) => d.id),
      ['only'],
    );
    assert.equal(project.worker?.taskQueue, 'from-project');
  });

  void test('a .mjs project file loads too', async () => {
    const dir = projectDir('mjs', GOOD.replace(`const greeting: string`, 'const greeting'), 'tempoflow.config.mjs');
    const project = await loadProject(resolveProjectFile(undefined, dir));
    assert.equal(project.dags[0]?.id, 'only');
  });

  void test('missing, broken and non-project files are ProjectErrors naming the file', async () => {
    const empty = path.join(root, 'empty');
    mkdirSync(empty);
    assert.throws(
      () => resolveProjectFile(undefined, empty),
      (err: Error) => {
        assert.ok(err instanceof ProjectError);
        assert.match(err.message, new RegExp(`no tempoflow\\.config\\.ts in ${empty}`));
        return true;
      },
    );
    assert.throws(() => resolveProjectFile('nope.ts', empty), /project file .*empty\/nope\.ts does not exist/);

    const syntax = projectDir('syntax', `${GOOD}\nconst broken: number = ;\n`);
    await assert.rejects(loadProject(path.join(syntax, 'tempoflow.config.ts')), (err: Error) => {
      assert.ok(err instanceof ProjectError);
      assert.match(
        err.message,
        /could not load project file .*syntax\/tempoflow\.config\.ts: .*tempoflow\.config\.ts:\d+:\d+/,
      );
      return true;
    });

    const plain = projectDir('plain', 'export default { dags: [] };\n');
    await assert.rejects(
      loadProject(path.join(plain, 'tempoflow.config.ts')),
      /plain\/tempoflow\.config\.ts must `export default defineProject/,
    );

    const badDag = projectDir(
      'bad-dag',
      GOOD.replace("activity: 'say' }", "activity: 'say' }, { id: 'a', activity: 'x' }"),
    );
    await assert.rejects(
      loadProject(path.join(badDag, 'tempoflow.config.ts')),
      // Where the DAG was declared: the defineDag call, line 5 of the project file.
      /could not load project file .*bad-dag.*duplicate task id 'a' \(at .*bad-dag\/tempoflow\.config\.ts:5:\d+\)$/,
    );
  });

  void test('the CLI: a broken project exits 2 naming it; --project picks a folder; no stack traces', async () => {
    const broken = projectDir('cli-broken', 'export default defineProject(;\n');
    const bad = await cli(['dags', 'list'], broken);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /error: could not load project file .*cli-broken\/tempoflow\.config\.ts/);
    assert.doesNotMatch(bad.stderr, /^\s+at /m);

    const good = projectDir('cli-good', GOOD);
    const listed = await cli(['--project', good, 'dags', 'list', '--json'], root);
    assert.equal(listed.code, 0, listed.stderr);
    assert.deepEqual(
      (JSON.parse(listed.stdout) as { id: string }[]).map((d) => d.id),
      ['only'],
    );

    const none = await cli(['dags', 'list'], path.join(root, 'empty'));
    assert.equal(none.code, 2);
    assert.match(none.stderr, /no tempoflow\.config\.ts in .*empty: .*tempoflow init/);
  });

  void test("runs logs reads the project's worker.logLocation, as the worker does", async () => {
    const withLogs = projectDir('with-logs', GOOD.replace("taskQueue: 'from-project'", `logLocation: '/tmp/logs'`));
    const dead = `127.0.0.1:1`; // nothing listens: the command gets as far as connecting only with a location
    const found = await cli(['runs', 'logs', 'some-run', '--address', dead], withLogs);
    assert.match(found.stderr, /cannot reach Temporal at 127\.0\.0\.1:1/);
    const none = await cli(['runs', 'logs', 'some-run', '--address', dead], projectDir('good', GOOD));
    assert.match(none.stderr, /no log location: give --log-location or set TEMPOFLOW_LOG_LOCATION/);
  });

  void test('defineProject refuses two DAGs with one id; findDag names the known ones', () => {
    const dag = defineDag({ id: 'twice', tasks: [{ id: 'a', activity: 'x' }] });
    assert.throws(
      () => defineProject({ dags: [dag, dag], activities: () => ({ x: async () => null }) }),
      /two DAGs have the id 'twice'/,
    );
    assert.throws(
      () => findDag([dag], 'other'),
      (err: Error) => {
        assert.ok(err instanceof UnknownDagError);
        assert.match(err.message, /unknown DAG 'other' \(known: twice\)/);
        return true;
      },
    );
  });

  void test('scanArgs finds --project and the command past global options', () => {
    assert.deepEqual(scanArgs(['--address', 'h:1', '--project', 'p', 'init', 'x']), { project: 'p', command: 'init' });
    assert.deepEqual(scanArgs(['trigger', 'hello', '--project=q']), { project: 'q', command: 'trigger' });
    assert.deepEqual(scanArgs(['--task-queue', 'init', 'dags']), { command: 'dags' });
  });
});
