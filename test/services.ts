/**
 * The real servers tests run against. Under `npm test` (scripts/test.ts) one Temporal dev server and one S3
 * server serve the whole run, passed in through the environment; a test file run on its own
 * (`npx tsx --test test/x.test.ts`) starts them itself, once per process, and stops them when it is done.
 */
import { randomUUID } from 'node:crypto';
import { CreateBucketCommand } from '@aws-sdk/client-s3';
import type { S3Client } from '@aws-sdk/client-s3';
import { createS3Client } from '../storage/s3-client';
import { startDevServer } from '../services/dev-server';
import type { DevServer } from '../services/dev-server';
import { s3EnvFor, startS3Server } from '../services/s3-server';
import type { S3Server } from '../services/s3-server';

export interface TestServices {
  /** `uiUrl`: the Web UI of the dev server. */
  temporal: { address: string; namespace: string; uiUrl: string };
  s3: { endpoint: string; accessKeyId: string; secretAccessKey: string; region: string };
}

/**
 * Set by scripts/test.ts for the test processes it starts. Test-only names: a developer's own
 * TEMPORAL_ADDRESS or AWS_* never send tests to a real server; tests decide what the code under test gets.
 */
export const HARNESS_ENV = {
  temporalAddress: 'TEMPOFLOW_TEST_TEMPORAL_ADDRESS',
  temporalNamespace: 'TEMPOFLOW_TEST_TEMPORAL_NAMESPACE',
  temporalUiUrl: 'TEMPOFLOW_TEST_TEMPORAL_UI_URL',
  s3Endpoint: 'TEMPOFLOW_TEST_S3_ENDPOINT',
  s3AccessKeyId: 'TEMPOFLOW_TEST_S3_ACCESS_KEY_ID',
  s3SecretAccessKey: 'TEMPOFLOW_TEST_S3_SECRET_ACCESS_KEY',
  s3Region: 'TEMPOFLOW_TEST_S3_REGION',
} as const;

/** The harness's variables for `temporal` and `s3` (what scripts/test.ts puts in the test processes' env). */
export function harnessEnv(services: TestServices): Record<string, string> {
  return {
    [HARNESS_ENV.temporalAddress]: services.temporal.address,
    [HARNESS_ENV.temporalNamespace]: services.temporal.namespace,
    [HARNESS_ENV.temporalUiUrl]: services.temporal.uiUrl,
    [HARNESS_ENV.s3Endpoint]: services.s3.endpoint,
    [HARNESS_ENV.s3AccessKeyId]: services.s3.accessKeyId,
    [HARNESS_ENV.s3SecretAccessKey]: services.s3.secretAccessKey,
    [HARNESS_ENV.s3Region]: services.s3.region,
  };
}

let services: Promise<TestServices> | undefined;

/** The test servers: the harness's, or this process's own (started on first call). */
export function testServices(): Promise<TestServices> {
  services ??= fromHarness() ?? startOwn();
  return services;
}

function fromHarness(): Promise<TestServices> | undefined {
  const env = (name: keyof typeof HARNESS_ENV) => process.env[HARNESS_ENV[name]];
  const address = env('temporalAddress');
  const endpoint = env('s3Endpoint');
  if (!address || !endpoint) return undefined;
  const required = (name: keyof typeof HARNESS_ENV) => {
    const value = env(name);
    if (!value) throw new Error(`${HARNESS_ENV[name]} is not set although ${HARNESS_ENV.temporalAddress} is`);
    return value;
  };
  return Promise.resolve({
    temporal: { address, namespace: env('temporalNamespace') || 'default', uiUrl: required('temporalUiUrl') },
    s3: {
      endpoint,
      accessKeyId: required('s3AccessKeyId'),
      secretAccessKey: required('s3SecretAccessKey'),
      region: env('s3Region') || 'us-east-1',
    },
  });
}

async function startOwn(): Promise<TestServices> {
  const started = await Promise.allSettled([startDevServer(), startS3Server()]);
  const [temporal, s3] = started;
  const running: (DevServer | S3Server)[] = [];
  for (const s of started) if (s.status === 'fulfilled') running.push(s.value);
  const stopAll = () => Promise.allSettled(running.map((server) => server.stop()));
  if (temporal.status === 'rejected' || s3.status === 'rejected') {
    await stopAll();
    throw temporal.status === 'rejected' ? temporal.reason : (s3 as PromiseRejectedResult).reason;
  }
  // Stop both gracefully once the test file has nothing left to do (the servers do not keep it alive);
  // if it ends with process.exit or a signal instead, services/dev-server's exit hooks kill them.
  process.once('beforeExit', () => {
    void stopAll();
  });
  return {
    temporal: { address: temporal.value.address, namespace: temporal.value.namespace, uiUrl: temporal.value.uiUrl! },
    s3: {
      endpoint: s3.value.endpoint,
      accessKeyId: s3.value.accessKeyId,
      secretAccessKey: s3.value.secretAccessKey,
      region: s3.value.region,
    },
  };
}

/** An S3 client for the test server, configured the way workers configure theirs (from AWS_* variables). */
export async function s3ClientForTests(): Promise<S3Client> {
  return createS3Client({ env: await s3EnvForTests() });
}

/** A fresh, uniquely named bucket on the test S3 server (a valid bucket name whatever `prefix` is). */
export async function createTestBucket(prefix: string): Promise<string> {
  const stem = prefix
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 40);
  const bucket = `${stem || 'test'}-${randomUUID().slice(0, 8)}`;
  const client = await s3ClientForTests();
  try {
    await client.send(new CreateBucketCommand({ Bucket: bucket }));
  } finally {
    client.destroy();
  }
  return bucket;
}

/** Env vars that point the AWS SDK in a worker or CLI process at the test S3 server. */
export async function s3EnvForTests(): Promise<Record<string, string>> {
  return s3EnvFor((await testServices()).s3);
}
