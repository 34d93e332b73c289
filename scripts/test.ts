/**
 * `npm test`: starts one Temporal dev server and one S3 server on free ports, runs the test files against
 * them with node's test runner, and stops both, whatever happens. `npm test -- test/x.test.ts` runs a subset.
 */
import { spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { startDevServer } from '../services/dev-server';
import { startS3Server } from '../services/s3-server';
import { HARNESS_ENV } from '../test/services';

// The locked AWS SDK supports Node 20; its notice about 2027 releases is noise in test output.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
const root = join(import.meta.dirname, '..');
const requested = process.argv.slice(2);
const files = requested.length
  ? requested
  : readdirSync(join(root, 'test'))
      .filter((f) => f.endsWith('.test.ts'))
      .sort()
      .map((f) => join('test', f));

const log = (message: string) => console.log(`[test harness] ${message}`);
const [temporal, s3] = await Promise.all([startDevServer({ log }), startS3Server({ log })]);
log(`Temporal dev server at ${temporal.address} (Web UI ${temporal.uiUrl}), S3 server at ${s3.endpoint}`);

let stopping: Promise<void> | undefined;
const stop = () => (stopping ??= Promise.all([temporal.stop(), s3.stop()]).then(() => undefined));

const runner = spawn(
  process.execPath,
  ['--import', 'tsx', '--test', '--test-concurrency=2', '--test-timeout=900000', ...files],
  {
    cwd: root,
    stdio: 'inherit',
    env: {
      ...process.env,
      [HARNESS_ENV.temporalAddress]: temporal.address,
      [HARNESS_ENV.temporalNamespace]: temporal.namespace,
      [HARNESS_ENV.temporalUiUrl]: temporal.uiUrl,
      [HARNESS_ENV.s3Endpoint]: s3.endpoint,
      [HARNESS_ENV.s3AccessKeyId]: s3.accessKeyId,
      [HARNESS_ENV.s3SecretAccessKey]: s3.secretAccessKey,
      [HARNESS_ENV.s3Region]: s3.region,
    },
  },
);
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    runner.kill(signal);
  });
}
const code = await new Promise<number>((resolve) => runner.once('exit', (c, signal) => resolve(c ?? (signal ? 1 : 0))));
await stop();
process.exit(code);
