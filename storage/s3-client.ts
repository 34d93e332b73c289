import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { S3Client, type S3ClientConfig } from '@aws-sdk/client-s3';
import ini from 'ini';

export interface S3ClientOptions {
  /** Environment to read settings from. Default `process.env` (the worker's environment). */
  env?: NodeJS.ProcessEnv;
  /** Directory in which `dl.cfg` is looked up when `TEMPOFLOW_DL_CFG` is not set. Default the working directory. */
  cwd?: string;
  /** Upper bound on open sockets to S3 (keep-alive pool). Default 64. */
  maxSockets?: number;
}

interface StaticCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
}

function unquote(v: unknown): string {
  return typeof v === 'string' ? v.trim().replace(/^(['"])(.*)\1$/, '$2') : '';
}

/**
 * Reads the Spark job's `dl.cfg` (INI, `[AWS]` with `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY`). Returns
 * undefined when the file or either key is absent. The values are never logged.
 */
export function readDlCfgCredentials(file: string): StaticCredentials | undefined {
  if (!existsSync(file)) return undefined;
  const parsed = ini.parse(readFileSync(file, 'utf8')) as Record<string, Record<string, unknown> | undefined>;
  const section = parsed.AWS ?? parsed.aws;
  const accessKeyId = unquote(section?.AWS_ACCESS_KEY_ID);
  const secretAccessKey = unquote(section?.AWS_SECRET_ACCESS_KEY);
  const sessionToken = unquote(section?.AWS_SESSION_TOKEN);
  if (!accessKeyId || !secretAccessKey) return undefined;
  return sessionToken ? { accessKeyId, secretAccessKey, sessionToken } : { accessKeyId, secretAccessKey };
}

/** The S3 endpoint override from the environment (for S3-compatible servers), if any. */
export function s3EndpointFromEnv(env: NodeJS.ProcessEnv = process.env): string | undefined {
  return env.AWS_ENDPOINT_URL_S3 || env.AWS_ENDPOINT_URL || undefined;
}

/**
 * The S3 client config from the worker's environment only:
 * - credentials: the SDK's standard chain (env, shared config/credentials files, SSO, instance roles); when the
 *   environment has no `AWS_ACCESS_KEY_ID`, a `dl.cfg` (path `TEMPOFLOW_DL_CFG`, else `./dl.cfg`) is used instead
 *   so the Spark job's config keeps working;
 * - `AWS_ENDPOINT_URL_S3` / `AWS_ENDPOINT_URL` with path-style addressing (S3-compatible servers rarely do
 *   virtual-host buckets);
 * - region `AWS_REGION` / `AWS_DEFAULT_REGION`, default us-west-2 (where the Udacity bucket lives);
 * - adaptive retries (backoff on throttling and 5xx) and a bounded keep-alive socket pool.
 */
export function s3ClientConfig(opts: S3ClientOptions = {}): S3ClientConfig {
  const env = opts.env ?? process.env;
  const endpoint = s3EndpointFromEnv(env);
  const config: S3ClientConfig = {
    region: env.AWS_REGION || env.AWS_DEFAULT_REGION || 'us-west-2',
    maxAttempts: Number(env.AWS_MAX_ATTEMPTS) || 8,
    retryMode: 'adaptive',
    // Checksums only where S3 requires them: S3-compatible servers do not all implement the newer CRC headers.
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    requestHandler: {
      httpAgent: { keepAlive: true, maxSockets: opts.maxSockets ?? 64 },
      httpsAgent: { keepAlive: true, maxSockets: opts.maxSockets ?? 64 },
      connectionTimeout: 10_000,
      requestTimeout: 120_000,
    },
  };
  if (endpoint) {
    config.endpoint = endpoint;
    config.forcePathStyle = true;
  }
  if (env.AWS_ACCESS_KEY_ID && env.AWS_SECRET_ACCESS_KEY) {
    if (opts.env) {
      // An explicit env object is not what the SDK's chain reads (it reads process.env): pass its keys directly.
      config.credentials = {
        accessKeyId: env.AWS_ACCESS_KEY_ID,
        secretAccessKey: env.AWS_SECRET_ACCESS_KEY,
        ...(env.AWS_SESSION_TOKEN ? { sessionToken: env.AWS_SESSION_TOKEN } : {}),
      };
    }
  } else {
    const file = env.TEMPOFLOW_DL_CFG || path.join(opts.cwd ?? process.cwd(), 'dl.cfg');
    const fromCfg = readDlCfgCredentials(file);
    if (fromCfg) config.credentials = fromCfg;
  }
  return config;
}

/** Builds the S3 client activities use (inject it with `createStore({ s3Client })`). */
export function createS3Client(opts: S3ClientOptions = {}): S3Client {
  return new S3Client(s3ClientConfig(opts));
}
