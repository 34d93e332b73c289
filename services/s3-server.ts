import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { CreateBucketCommand, ListBucketsCommand, S3Client } from '@aws-sdk/client-s3';
import { killOnExit, stopProcess } from './dev-server';
import { freePort } from './free-port';
import { ensureTool, S3_SERVER, ToolchainError } from './toolchain';

export interface S3Server {
  /** http://127.0.0.1:PORT */
  endpoint: string;
  accessKeyId: string;
  secretAccessKey: string;
  region: string;
  /** Buckets are the top-level folders of this directory. */
  dataDir: string;
  stop(): Promise<void>;
}

/**
 * Starts versitygw, a real S3-compatible server, on a free loopback port over a local directory, with fresh
 * random credentials. Buckets in `buckets` are created before it returns.
 */
export async function startS3Server(
  options: { dataDir?: string; port?: number; buckets?: string[]; log?: (message: string) => void } = {},
): Promise<S3Server> {
  const binary = await ensureTool(S3_SERVER, options.log);
  const ownDir = !options.dataDir;
  const dataDir = options.dataDir ?? mkdtempSync(join(tmpdir(), 'tempoflow-s3-'));
  mkdirSync(dataDir, { recursive: true });
  const port = options.port ?? (await freePort());
  const accessKeyId = `tempoflow${randomBytes(6).toString('hex')}`;
  const secretAccessKey = randomBytes(24).toString('base64url');
  const region = 'us-east-1';
  // Credentials go through the environment, not argv, so `ps` does not show them.
  const child = spawn(binary, ['--port', `127.0.0.1:${port}`, '--region', region, 'posix', dataDir], {
    detached: true,
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env, ROOT_ACCESS_KEY_ID: accessKeyId, ROOT_SECRET_ACCESS_KEY: secretAccessKey },
  });
  killOnExit(child);
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-4000);
  });
  const endpoint = `http://127.0.0.1:${port}`;
  const stop = async () => {
    await stopProcess(child);
    if (ownDir) rmSync(dataDir, { recursive: true, force: true });
  };
  const client = new S3Client({ endpoint, region, forcePathStyle: true, credentials: { accessKeyId, secretAccessKey } });
  try {
    const deadline = Date.now() + 30_000;
    for (;;) {
      if (child.exitCode !== null) throw new ToolchainError(`versitygw exited at start: ${stderr.trim() || 'no output'}`);
      try {
        await client.send(new ListBucketsCommand({}));
        break;
      } catch (err) {
        if (Date.now() > deadline) throw new ToolchainError(`versitygw did not answer on ${endpoint}: ${stderr.trim()}`, { cause: err });
        await delay(100);
      }
    }
    for (const bucket of options.buckets ?? []) await client.send(new CreateBucketCommand({ Bucket: bucket }));
  } catch (err) {
    await stop();
    throw err;
  } finally {
    client.destroy();
  }
  return { endpoint, accessKeyId, secretAccessKey, region, dataDir, stop };
}

/** Environment variables that point the AWS SDK (and so tempoflow's activities) at this server. */
export function s3EnvFor(server: S3Server): Record<string, string> {
  return {
    AWS_ENDPOINT_URL_S3: server.endpoint,
    AWS_ACCESS_KEY_ID: server.accessKeyId,
    AWS_SECRET_ACCESS_KEY: server.secretAccessKey,
    AWS_REGION: server.region,
  };
}
