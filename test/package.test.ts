/**
 * tempoflow as others get it: `npm pack`, installed from the tarball into a folder outside the repository,
 * `tempoflow init`, the scaffold's DAG run with `trigger --local`, and the scaffold's own test passing.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { DagRunStatus } from '../core/types';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
/** What `npm pack` needs: the framework's sources and build files (no application code, no tests). */
const PACKED_SOURCES = [
  'package.json',
  'tsconfig.json',
  'tsconfig.build.json',
  'tsup.config.ts',
  'README.md',
  'bin',
  'api',
  'core',
  'workflows',
  'worker',
  'client',
  'testing',
  'services',
  'storage',
  'scripts/build.ts',
  'docs/own-project.md',
];

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * The environment of a user's shell: none of the npm variables of the `npm test` this runs under, and not the
 * test runner's NODE_TEST_CONTEXT (with it the scaffold's `node --test` would report to this runner, not print).
 */
const userEnv: NodeJS.ProcessEnv = Object.fromEntries(
  Object.entries(process.env).filter(([key]) => !key.toLowerCase().startsWith('npm_') && key !== 'NODE_TEST_CONTEXT'),
);

function run(command: string, args: string[], cwd: string, timeoutMs = 300_000): Promise<Result> {
  return new Promise((resolve) => {
    execFile(
      command,
      args,
      { cwd, env: { ...userEnv, NO_COLOR: '1' }, timeout: timeoutMs, maxBuffer: 32 * 1024 * 1024 },
      (error, stdout, stderr) => {
        resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout, stderr });
      },
    );
  });
}

async function ok(command: string, args: string[], cwd: string): Promise<Result> {
  const result = await run(command, args, cwd);
  assert.equal(result.code, 0, `${command} ${args.join(' ')} in ${cwd} failed:\n${result.stdout}\n${result.stderr}`);
  return result;
}

interface LockEntry {
  version?: string;
  resolved?: string;
  integrity?: string;
  dependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
  dev?: boolean;
  devOptional?: boolean;
  [field: string]: unknown;
}

/**
 * A package-lock.json for a project depending on the packed tempoflow (and the scaffold's dev tools): every package
 * pinned to the version, URL and integrity this repository's own lock has, so `npm install --offline` finds each
 * tarball in the npm cache that `npm ci` filled, and needs no registry metadata (which `npm ci` does not cache).
 */
function offlineLock(project: string, tarball: string): string {
  const pkg = JSON.parse(readFileSync(path.join(project, 'package.json'), 'utf8')) as {
    name: string;
    dependencies?: Record<string, string>;
    devDependencies?: Record<string, string>;
  };
  const own = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as {
    version: string;
    dependencies: Record<string, string>;
  };
  const repoLock = JSON.parse(readFileSync(path.join(ROOT, 'package-lock.json'), 'utf8')) as {
    packages: Record<string, LockEntry>;
  };
  const integrity = `sha512-${createHash('sha512').update(readFileSync(tarball)).digest('base64')}`;
  const packages: Record<string, LockEntry> = {
    '': { name: pkg.name, dependencies: pkg.dependencies, devDependencies: pkg.devDependencies },
    'node_modules/tempoflow': {
      version: own.version,
      resolved: `file:${path.relative(project, tarball)}`,
      integrity,
      license: 'MIT',
      dependencies: own.dependencies,
      bin: { tempoflow: 'bin/tempoflow.js' },
    },
  };
  // Node's resolution over the lock's paths: from `from`, the nearest node_modules/<name> up the tree.
  const resolve = (from: string, name: string): string | undefined => {
    for (let base = from; ; base = base.slice(0, Math.max(0, base.lastIndexOf('/node_modules/')))) {
      const at = `${base ? `${base}/` : ''}node_modules/${name}`;
      if (repoLock.packages[at] && at !== 'node_modules/tempoflow') return at;
      if (!base) return undefined;
    }
  };
  // The registry npm runs with (`npm test` passes its config on), as the cache keys its tarballs by URL.
  const registry = (process.env.npm_config_registry ?? 'https://registry.npmjs.org/').replace(/\/?$/, '/');
  const visit = (from: string, deps: Record<string, string> = {}) => {
    for (const name of Object.keys(deps)) {
      const at = resolve(from === 'node_modules/tempoflow' ? '' : from, name);
      if (!at || packages[at]) continue;
      const { dev: _dev, devOptional: _devOptional, ...entry } = repoLock.packages[at]!;
      // The registry URL the tarball was cached under, so npm needs no package metadata to find it (a lock
      // written without `resolved` would make it ask for the metadata, which may not be cached).
      const pkgName = at.slice(at.lastIndexOf('node_modules/') + 'node_modules/'.length);
      if (!entry.resolved && entry.version && entry.integrity) {
        entry.resolved = `${registry}${pkgName}/-/${pkgName.split('/').pop()}-${entry.version}.tgz`;
      }
      packages[at] = entry;
      visit(at, { ...entry.dependencies, ...entry.optionalDependencies, ...entry.peerDependencies });
    }
  };
  visit('node_modules/tempoflow', own.dependencies);
  visit('', pkg.devDependencies);
  return `${JSON.stringify({ name: pkg.name, lockfileVersion: 3, requires: true, packages }, null, 2)}\n`;
}

/** Installs offline: from the tarball and the npm cache only (`npm ci` filled it), never the registry. */
async function npmInstall(project: string, tarball: string): Promise<void> {
  writeFileSync(path.join(project, 'package-lock.json'), offlineLock(project, tarball));
  await ok('npm', ['install', '--offline', '--no-audit', '--no-fund', '--loglevel=error'], project);
}

void describe('the packed tempoflow package, installed in a project of its own', () => {
  let work: string;
  let tarball: string;

  before(async () => {
    work = mkdtempSync(path.join(os.tmpdir(), 'tempoflow-package-'));
    assert.ok(path.relative(ROOT, work).startsWith('..'), `${work} must be outside the repository`);
    // Packed from a copy, so building dist/ never swaps the workflow bundle under tests running meanwhile.
    const source = path.join(work, 'source');
    for (const entry of PACKED_SOURCES) cpSync(path.join(ROOT, entry), path.join(source, entry), { recursive: true });
    symlinkSync(path.join(ROOT, 'node_modules'), path.join(source, 'node_modules'), 'dir');
    const packed = path.join(work, 'packed');
    mkdirSync(packed);
    await ok('npm', ['pack', '--pack-destination', packed, '--loglevel=error'], source);
    const [name] = readdirSync(packed).filter((f) => f.endsWith('.tgz'));
    assert.ok(name, 'npm pack wrote no tarball');
    tarball = path.join(packed, name);
  });

  after(() => {
    if (work) rmSync(work, { recursive: true, force: true });
  });

  void test('the tarball holds compiled JavaScript, types and the workflow bundle, and no TypeScript source', async () => {
    const { stdout } = await ok('tar', ['-tzf', tarball], work);
    const files = stdout.split('\n').filter(Boolean);
    for (const file of [
      'package/bin/tempoflow.js',
      'package/dist/index.js',
      'package/dist/index.d.ts',
      'package/dist/worker.js',
      'package/dist/client.js',
      'package/dist/testing.js',
      'package/dist/testing.d.ts',
      'package/dist/cli.js',
      'package/dist/workflow-bundle.js',
    ]) {
      assert.ok(files.includes(file), `${file} missing from the tarball`);
    }
    assert.deepEqual(
      files.filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts')),
      [],
    );
  });

  void test('init, trigger --local and the scaffold test work from the installed tarball', async () => {
    const app = path.join(work, 'app');
    mkdirSync(app);
    writeFileSync(
      path.join(app, 'package.json'),
      JSON.stringify({ name: 'app', private: true, dependencies: { tempoflow: `file:${tarball}` } }),
    );
    await npmInstall(app, tarball);

    // No project here yet: commands that need one say where they looked, with exit 2.
    const none = await run('npx', ['tempoflow', 'dags', 'list'], app);
    assert.equal(none.code, 2, none.stderr);
    assert.match(
      none.stderr,
      new RegExp(`no tempoflow\\.config\\.ts in ${app.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`),
    );

    await ok('npx', ['tempoflow', 'init', 'hello-app', '--tempoflow', `file:${tarball}`], app);
    const project = path.join(app, 'hello-app');
    await npmInstall(project, tarball);

    const triggered = await ok(
      'npx',
      ['tempoflow', 'trigger', 'hello', '--local', '-p', 'name=Ada', '--json'],
      project,
    );
    const status = JSON.parse(triggered.stdout) as DagRunStatus;
    assert.equal(status.state, 'success');
    assert.equal(status.outputs.shout, 'HELLO, ADA!');

    const tested = await ok('npm', ['test'], project);
    assert.match(tested.stdout, /^# pass 2$/m);
    assert.match(tested.stdout, /^# fail 0$/m);

    // Typed end to end against the installed .d.ts: the scaffold compiles, and a misspelled activity does not.
    await ok('npm', ['run', 'typecheck'], project);
    const dagFile = path.join(project, 'dags', 'hello.ts');
    writeFileSync(dagFile, readFileSync(dagFile, 'utf8').replace("activity: 'shout'", "activity: 'shoot'"));
    const misspelled = await run('npm', ['run', 'typecheck'], project);
    assert.notEqual(misspelled.code, 0, 'tsc accepted a DAG naming a missing activity');
    assert.match(
      misspelled.stdout + misspelled.stderr,
      /DAG 'hello', task 'shout': activity 'shoot' is not one of the project's activities/,
    );
  });
});
