import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { CreateBucketCommand, ListBucketsCommand, S3Client } from '@aws-sdk/client-s3';
import { atProcessEnd, killOnExit, stopProcess } from './dev-server';
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
  /** The server's process id (for resource measurements such as the benchmark's). */
  pid?: number;
  stop(): Promise<void>;
}

/**
 * Where versitygw's posix backend keeps object metadata (ETag, content type, user metadata):
 * - `xattr`: extended attributes on the object files (versitygw's default; needs a filesystem with user xattrs);
 * - `sidecar`: files in a separate directory, for filesystems without them (some tmpfs, overlayfs, NFS);
 * - `auto` (default): xattr, falling back to sidecar when versitygw's start-up xattr check fails.
 * `TEMPOFLOW_S3_METADATA` overrides the default.
 */
export type S3MetadataMode = 'auto' | 'xattr' | 'sidecar';

export interface S3ServerOptions {
  /** Root directory of the posix backend; default: a fresh temp dir, removed by stop(). */
  dataDir?: string;
  /** Default: a free port. */
  port?: number;
  /** Created before startS3Server returns. */
  buckets?: string[];
  /** Default: fresh random keys. A restart on the same `dataDir` passes the first start's keys (they own the buckets). */
  credentials?: { accessKeyId: string; secretAccessKey: string };
  metadata?: S3MetadataMode;
  log?: (message: string) => void;
}

const REGION = 'us-east-1';
const START_ATTEMPTS = 3;

/** versitygw stopped before it answered; `output` is its stderr and stdout. */
class S3ServerExitedError extends ToolchainError {
  override name = 'S3ServerExitedError';
  constructor(readonly output: string) {
    super(`versitygw exited at start: ${output.trim() || 'no output'}`);
  }
}

/**
 * Starts versitygw, a real S3-compatible server, on a free loopback port over a local directory, with fresh
 * random credentials. Buckets in `buckets` are created before it returns.
 */
export async function startS3Server(options: S3ServerOptions = {}): Promise<S3Server> {
  const binary = await ensureTool(S3_SERVER, options.log);
  // Own temp dir: objects and sidecar metadata side by side (versitygw refuses a sidecar inside its root,
  // and compares the paths as strings, so "<root>-meta" would count as inside).
  const ownDir = options.dataDir ? undefined : mkdtempSync(join(tmpdir(), 'tempoflow-s3-'));
  const dataDir = options.dataDir ? resolve(options.dataDir) : join(ownDir!, 'objects');
  const sidecarDir = ownDir ? join(ownDir, 'meta') : join(dirname(dataDir), `.${basename(dataDir)}.versitygw-meta`);
  mkdirSync(dataDir, { recursive: true });
  const removeOwnDir = () => {
    if (ownDir) rmSync(ownDir, { recursive: true, force: true });
    unregister();
  };
  // Also when this process ends without calling stop() (process.exit and signals skip async clean-up).
  const unregister = ownDir ? atProcessEnd(removeOwnDir) : () => false;

  let mode = options.metadata ?? (process.env.TEMPOFLOW_S3_METADATA as S3MetadataMode | undefined) ?? 'auto';
  try {
    for (let attempt = 1; ; attempt++) {
      const port = options.port ?? (await freePort());
      try {
        const server = await startOnce(binary, port, dataDir, mode === 'sidecar' ? sidecarDir : undefined, options);
        const stop = async () => {
          await server.stop();
          removeOwnDir();
        };
        return { ...server, dataDir, stop };
      } catch (err) {
        if (!(err instanceof S3ServerExitedError) || attempt >= START_ATTEMPTS) throw err;
        if (mode === 'auto' && err.output.includes('xattr check failed')) {
          options.log?.(`no extended attributes on ${dataDir}'s filesystem: versitygw keeps metadata in ${sidecarDir}`);
          mode = 'sidecar';
          mkdirSync(sidecarDir, { recursive: true });
        } else if (options.port !== undefined || !/address already in use/i.test(err.output)) {
          throw err;
        }
      }
    }
  } catch (err) {
    removeOwnDir();
    throw err;
  }
}

async function startOnce(
  binary: string,
  port: number,
  dataDir: string,
  sidecarDir: string | undefined,
  options: S3ServerOptions,
): Promise<Omit<S3Server, 'dataDir'>> {
  const accessKeyId = options.credentials?.accessKeyId ?? `tempoflow${randomBytes(6).toString('hex')}`;
  const secretAccessKey = options.credentials?.secretAccessKey ?? randomBytes(24).toString('base64url');
  if (sidecarDir) mkdirSync(sidecarDir, { recursive: true });
  const args = [
    '--port',
    `127.0.0.1:${port}`,
    '--region',
    REGION,
    '--quiet', // no per-request log lines
    '--keep-alive', // as S3 does: without it every request opens a new connection
    'posix',
    ...(sidecarDir ? ['--sidecar', sidecarDir] : []),
    dataDir,
  ];
  // Credentials go through the environment, not argv, so `ps` does not show them.
  const child = spawn(binary, args, {
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ROOT_ACCESS_KEY_ID: accessKeyId, ROOT_SECRET_ACCESS_KEY: secretAccessKey },
  });
  killOnExit(child);
  let output = '';
  const keep = (chunk: Buffer) => {
    output = (output + chunk.toString()).slice(-4000);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  (child.stdout as { unref?: () => void } | null)?.unref?.();
  let exited = false;
  child.once('exit', () => (exited = true));

  const endpoint = `http://127.0.0.1:${port}`;
  const stop = () => stopProcess(child);
  const client = new S3Client({
    endpoint,
    region: REGION,
    forcePathStyle: true,
    credentials: { accessKeyId, secretAccessKey },
    maxAttempts: 1,
  });
  try {
    const deadline = Date.now() + 30_000;
    for (;;) {
      if (exited) {
        await delay(50); // let the last output arrive
        throw new S3ServerExitedError(output);
      }
      try {
        await client.send(new ListBucketsCommand({}));
        break;
      } catch (err) {
        if (Date.now() > deadline) {
          throw new ToolchainError(`versitygw did not answer on ${endpoint} within 30s: ${output.trim()}`, {
            cause: err,
          });
        }
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
  return { endpoint, accessKeyId, secretAccessKey, region: REGION, pid: child.pid, stop };
}

/** Environment variables that point the AWS SDK (and so tempoflow's activities) at this server. */
export function s3EnvFor(
  server: Pick<S3Server, 'endpoint' | 'accessKeyId' | 'secretAccessKey' | 'region'>,
): Record<'AWS_ENDPOINT_URL_S3' | 'AWS_ACCESS_KEY_ID' | 'AWS_SECRET_ACCESS_KEY' | 'AWS_REGION', string> {
  return {
    AWS_ENDPOINT_URL_S3: server.endpoint,
    AWS_ACCESS_KEY_ID: server.accessKeyId,
    AWS_SECRET_ACCESS_KEY: server.secretAccessKey,
    AWS_REGION: server.region,
  };
}
