/**
 * `npm test`: starts one Temporal dev server and one S3 server on free ports, runs the test files against
 * them with node's test runner, and stops both whatever happens; exits with the runner's exit code.
 *   npm test -- test/services.test.ts            a subset (files or directories)
 *   npm test -- --test-name-pattern=S3 test/x    options starting with '-' go to node
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { startDevServer } from '../services/dev-server';
import type { DevServer } from '../services/dev-server';
import { startS3Server } from '../services/s3-server';
import type { S3Server } from '../services/s3-server';
import { findTemporalCli } from '../services/temporal-cli';
import { harnessEnv } from '../test/services';

/**
 * The Web UI test drives Debian's Chromium (never a browser a test tool downloads): installed here from the
 * distribution's packages when missing, as `.ci/run` does, so `npm test` alone is enough on a fresh machine.
 */
async function ensureChromium(): Promise<void> {
  const path = process.env.TEMPOFLOW_CHROMIUM ?? '/usr/bin/chromium';
  if (existsSync(path) || process.env.TEMPOFLOW_CHROMIUM) return;
  log("Chromium missing: installing Debian's chromium package (apt-get; once per machine)...");
  const asRoot = process.getuid?.() === 0;
  const apt = (...args: string[]) =>
    spawnSync(asRoot ? 'apt-get' : 'sudo', asRoot ? args : ['apt-get', ...args], {
      stdio: 'inherit',
      env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
    });
  if (apt('update', '-qq').status !== 0 || apt('install', '-y', '-qq', 'chromium').status !== 0) {
    log('could not install chromium: the Web UI test will say so (apt-get install -y chromium)');
  }
}

// The locked AWS SDK supports Node 20; its notice about 2027 releases is noise in test output.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
const root = join(import.meta.dirname, '..');
const log = (message: string) => console.log(`[test harness] ${message}`);

/** `test/**\/*.test.ts` (node 20's --test takes no globs). */
function testFiles(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.test.ts') && !f.split('/').includes('node_modules'))
    .map((f) => relative(root, join(dir, f)))
    .sort();
}

const args = process.argv.slice(2);
const nodeOptions = args.filter((a) => a.startsWith('-'));
const requested = args.filter((a) => !a.startsWith('-'));
const files = requested.length
  ? requested.flatMap((p) => (statSync(resolve(p)).isDirectory() ? testFiles(resolve(p)) : [p]))
  : testFiles(join(root, 'test'));
if (!files.length) {
  console.error(`no test files in ${requested.join(' ') || 'test/'}`);
  process.exit(1);
}

await ensureChromium();

const servers: (DevServer | S3Server)[] = [];
let stopping: Promise<unknown> | undefined;
const stopServers = () => (stopping ??= Promise.allSettled(servers.map((s) => s.stop())));

const started = await Promise.allSettled([startDevServer({ log }), startS3Server({ log })]);
for (const s of started) if (s.status === 'fulfilled') servers.push(s.value);
const [temporalStarted, s3Started] = started;
if (temporalStarted.status === 'rejected' || s3Started.status === 'rejected') {
  for (const s of started) if (s.status === 'rejected') console.error('[test harness] could not start:', s.reason);
  await stopServers();
  process.exit(1);
}
const temporal = temporalStarted.value;
const s3 = s3Started.value;
log(`Temporal dev server at ${temporal.address} (Web UI ${temporal.uiUrl}), S3 server at ${s3.endpoint}`);
const cliPath = await findTemporalCli();

const runner = spawn(
  process.execPath,
  ['--import', 'tsx', '--test', '--test-concurrency=2', '--test-timeout=600000', ...nodeOptions, ...files],
  {
    cwd: root,
    stdio: 'inherit',
    env: {
      ...process.env,
      TEMPORAL_ADDRESS: temporal.address,
      TEMPORAL_NAMESPACE: temporal.namespace,
      ...(cliPath ? { TEMPORAL_CLI_PATH: cliPath } : {}),
      ...harnessEnv({
        temporal: { address: temporal.address, namespace: temporal.namespace, uiUrl: temporal.uiUrl ?? '' },
        s3,
      }),
    },
  },
);
// Ctrl-C reaches the runner too (same process group); we only make sure the servers go once it is done.
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.on(signal, () => {
    if (runner.exitCode === null) runner.kill(signal);
  });
}
const code = await new Promise<number>((done) => {
  runner.once('error', (err) => {
    console.error('[test harness] could not run the tests:', err);
    done(1);
  });
  runner.once('exit', (c, signal) => done(c ?? (signal ? 1 : 0)));
});
await stopServers();
process.exit(code);
