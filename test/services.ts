/**
 * The real servers tests run against. Under `npm test` (scripts/test.ts) one Temporal dev server and one S3
 * server serve the whole run, passed in through the environment; a test file run on its own starts them
 * itself, once per process, and stops them when the process is done.
 */
import { randomUUID } from 'node:crypto';
import { CreateBucketCommand } from '@aws-sdk/client-s3';
import type { S3Client } from '@aws-sdk/client-s3';
import { createS3Client } from '../activities/storage/s3-client';
import { startDevServer } from '../services/dev-server';
import { startS3Server } from '../services/s3-server';

export interface TestServices {
  /** `uiUrl`: the Web UI of the dev server. */
  temporal: { address: string; namespace: string; uiUrl: string };
  s3: { endpoint: string; accessKeyId: string; secretAccessKey: string; region: string };
}

/** Set by scripts/test.ts for the test processes it starts. */
export const HARNESS_ENV = {
  temporalAddress: 'TEMPOFLOW_TEST_TEMPORAL_ADDRESS',
  temporalNamespace: 'TEMPOFLOW_TEST_TEMPORAL_NAMESPACE',
  temporalUiUrl: 'TEMPOFLOW_TEST_TEMPORAL_UI_URL',
  s3Endpoint: 'TEMPOFLOW_TEST_S3_ENDPOINT',
  s3AccessKeyId: 'TEMPOFLOW_TEST_S3_ACCESS_KEY_ID',
  s3SecretAccessKey: 'TEMPOFLOW_TEST_S3_SECRET_ACCESS_KEY',
  s3Region: 'TEMPOFLOW_TEST_S3_REGION',
} as const;

let services: Promise<TestServices> | undefined;

export function testServices(): Promise<TestServices> {
  services ??= fromHarness() ?? startOwn();
  return services;
}

function fromHarness(): Promise<TestServices> | undefined {
  const env = (name: keyof typeof HARNESS_ENV) => process.env[HARNESS_ENV[name]];
  const address = env('temporalAddress');
  const endpoint = env('s3Endpoint');
  if (!address || !endpoint) return undefined;
  return Promise.resolve({
    temporal: { address, namespace: env('temporalNamespace') ?? 'default', uiUrl: env('temporalUiUrl')! },
    s3: {
      endpoint,
      accessKeyId: env('s3AccessKeyId')!,
      secretAccessKey: env('s3SecretAccessKey')!,
      region: env('s3Region') ?? 'us-east-1',
    },
  });
}

async function startOwn(): Promise<TestServices> {
  const [temporal, s3] = await Promise.all([startDevServer(), startS3Server()]);
  // Stop both when the test process has nothing left to do.
  process.once('beforeExit', () => {
    void Promise.all([temporal.stop(), s3.stop()]);
  });
  return {
    temporal: { address: temporal.address, namespace: temporal.namespace, uiUrl: temporal.uiUrl! },
    s3: { endpoint: s3.endpoint, accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey, region: s3.region },
  };
}

/** An S3 client for the test server, configured the way workers configure theirs (from AWS_* variables). */
export async function s3ClientForTests(): Promise<S3Client> {
  return createS3Client({ env: await s3EnvForTests() });
}

/** A fresh, uniquely named bucket on the test S3 server. */
export async function createTestBucket(prefix: string): Promise<string> {
  const bucket = `${prefix.toLowerCase().replace(/[^a-z0-9-]/g, '-').slice(0, 30)}-${randomUUID().slice(0, 8)}`;
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
  const { s3 } = await testServices();
  return {
    AWS_ENDPOINT_URL_S3: s3.endpoint,
    AWS_ACCESS_KEY_ID: s3.accessKeyId,
    AWS_SECRET_ACCESS_KEY: s3.secretAccessKey,
    AWS_REGION: s3.region,
  };
}
