/** `tempoflow init <dir>`: a new project that runs at once (`npx tempoflow trigger hello --local`) and tests green. */
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import { UsageError } from '../context';
import type { CliContext } from '../context';

interface InitFlags {
  tempoflow?: string;
  json?: boolean;
}

export function register(program: Command, ctx: CliContext): void {
  program
    .command('init')
    .description('create a project: a DAG `hello` with its activities, a project file and a test')
    .argument('<dir>', 'the folder to create (it may exist if empty)')
    .option(
      '--tempoflow <spec>',
      'how package.json names tempoflow (default: ^<this version>; a path or tarball works)',
    )
    .option('--json', 'print the files written as JSON')
    .action((dir: string, flags: InitFlags) => {
      const target = path.resolve(dir);
      if (existsSync(target) && readdirSync(target).length) {
        throw new UsageError(`${target} is not empty: tempoflow init writes into a new or empty folder`);
      }
      const own = ownPackage();
      const files = scaffold({
        name: packageName(path.basename(target)),
        tempoflow: flags.tempoflow ?? `^${own.version}`,
        versions: own.versions,
      });
      for (const [file, text] of Object.entries(files)) {
        mkdirSync(path.dirname(path.join(target, file)), { recursive: true });
        writeFileSync(path.join(target, file), text);
      }
      if (flags.json) return ctx.json({ dir: target, files: Object.keys(files) });
      const s = ctx.style;
      ctx.out(`${s.green('✔')} created a tempoflow project in ${s.bold(target)}`);
      for (const file of Object.keys(files)) ctx.out(s.dim(`  ${file}`));
      ctx.out('');
      ctx.out('Next:');
      ctx.out(`  cd ${path.relative(process.cwd(), target) || '.'}`);
      ctx.out('  npm install');
      ctx.out('  npx tempoflow trigger hello --local      run the DAG on a throwaway local Temporal server');
      ctx.out('  npm test                                  its test, against a real ephemeral Temporal server');
    });
}

/** A valid npm package name from a folder name. */
function packageName(base: string): string {
  const name = base
    .toLowerCase()
    .replace(/[^a-z0-9._-]+/g, '-')
    .replace(/^[._-]+/, '');
  return name || 'tempoflow-project';
}

/** This tempoflow's version and the version ranges of the tools the scaffold uses, from its package.json. */
function ownPackage(): { version: string; versions: Record<string, string> } {
  // The package root is above this file both in the sources (client/commands/) and in the build (dist/).
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const file = path.join(dir, 'package.json');
    if (existsSync(file)) {
      const pkg = JSON.parse(readFileSync(file, 'utf8')) as {
        name?: string;
        version: string;
        dependencies?: Record<string, string>;
        devDependencies?: Record<string, string>;
      };
      if (pkg.name === 'tempoflow')
        return { version: pkg.version, versions: { ...pkg.devDependencies, ...pkg.dependencies } };
    }
    const parent = path.dirname(dir);
    if (parent === dir) return { version: '0.1.0', versions: {} };
    dir = parent;
  }
}

interface ScaffoldOptions {
  name: string;
  /** The dependency spec of tempoflow. */
  tempoflow: string;
  /** Version ranges of tsx, typescript and @types/node (tempoflow's own). */
  versions: Record<string, string>;
}

/** The files of a new project, by relative path. */
export function scaffold(options: ScaffoldOptions): Record<string, string> {
  const version = (name: string, fallback: string) => options.versions[name] ?? fallback;
  const packageJson = {
    name: options.name,
    version: '0.1.0',
    private: true,
    type: 'module',
    scripts: {
      test: 'node --import tsx --test test/*.test.ts',
      typecheck: 'tsc --noEmit',
      worker: 'tempoflow worker',
      dev: 'tempoflow dev',
    },
    dependencies: { tempoflow: options.tempoflow },
    devDependencies: {
      '@types/node': version('@types/node', '^20.19.0'),
      tsx: version('tsx', '^4.20.0'),
      typescript: version('typescript', '~5.9'),
    },
  };
  const tsconfig = {
    compilerOptions: {
      target: 'ES2022',
      module: 'ESNext',
      moduleResolution: 'Bundler',
      lib: ['ES2022'],
      types: ['node'],
      strict: true,
      skipLibCheck: true,
      noEmit: true,
    },
    include: ['tempoflow.config.ts', 'dags', 'activities', 'test'],
  };
  return {
    'package.json': `${JSON.stringify(packageJson, null, 2)}\n`,
    'tsconfig.json': `${JSON.stringify(tsconfig, null, 2)}\n`,
    '.gitignore': 'node_modules/\n',
    'tempoflow.config.ts': `import { defineProject } from 'tempoflow';
import { createActivities } from './activities/hello';
import { helloDag } from './dags/hello';

/** The project: its DAGs and the activities their tasks name. \`tempoflow\` (CLI and worker) loads this file. */
export default defineProject({
  dags: [helloDag],
  activities: () => createActivities(),
});
`,
    'dags/hello.ts': `import { defineDag } from 'tempoflow';

/** Greets someone, then shouts the greeting: two tasks, the second after the first. */
export const helloDag = defineDag({
  id: 'hello',
  description: 'Greets someone, then shouts the greeting',
  params: {
    name: { type: 'string', default: 'world', description: 'who to greet' },
  },
  defaults: { retries: 2, executionTimeout: '1m' },
  tasks: [
    { id: 'greet', activity: 'greet' },
    { id: 'shout', activity: 'shout', upstream: ['greet'] },
  ],
});
`,
    'activities/hello.ts': `import type { TaskContextOf, TaskIdOf } from 'tempoflow';
import type { helloDag } from '../dags/hello';

/** What each task of \`hello\` receives: params typed from the DAG, upstream outputs from the signatures below. */
type Context<T extends TaskIdOf<typeof helloDag>> = TaskContextOf<typeof helloDag, T, HelloActivities>;

/**
 * The task code of the \`hello\` DAG. Each signature states what its task returns; \`defineProject\` checks every
 * task's \`activity\` against these names and contexts when the project compiles (\`npm run typecheck\`).
 */
export interface HelloActivities {
  /** Returns small JSON: the greeting. */
  greet(ctx: Context<'greet'>): Promise<string>;
  /** Reads its upstream task's output, typed: \`ctx.upstream.greet\` is a string. */
  shout(ctx: Context<'shout'>): Promise<string>;
}

/** Build clients (databases, storage) here and pass them in. */
export function createActivities(): HelloActivities {
  return {
    async greet(ctx) {
      return \`Hello, \${ctx.params.name}!\`;
    },
    async shout(ctx) {
      return ctx.upstream.greet.toUpperCase();
    },
  };
}
`,
    'test/hello.test.ts': `import assert from 'node:assert/strict';
import { test } from 'node:test';
import { runActivity, runDag } from 'tempoflow/testing';
import { createActivities } from '../activities/hello';
import { helloDag } from '../dags/hello';

test('greet greets the name it is given', async () => {
  const { greet } = createActivities();
  assert.equal(await runActivity(greet, { params: { name: 'Ada' } }), 'Hello, Ada!');
});

test('the hello DAG runs to success on a real Temporal server', async () => {
  const status = await runDag(helloDag, { params: { name: 'Ada' }, activities: createActivities() });
  assert.equal(status.state, 'success');
  assert.equal(status.outputs.shout, 'HELLO, ADA!');
});
`,
    'README.md': `# ${options.name}

A [tempoflow](https://www.npmjs.com/package/tempoflow) project: DAGs in \`dags/\`, their task code in
\`activities/\`, both registered in \`tempoflow.config.ts\`.

\`\`\`sh
npm install
npx tempoflow trigger hello --local -p name=Ada   # run it once on a throwaway local Temporal server
npm test                                         # the DAG's test, against a real ephemeral Temporal server
npx tempoflow dev                                # a local Temporal server with its Web UI and a worker
\`\`\`
`,
  };
}
