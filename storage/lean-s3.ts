import { createReadStream } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type { Readable } from 'node:stream';
import { setTimeout as delay } from 'node:timers/promises';
import { S3ServiceException, type S3Client } from '@aws-sdk/client-s3';
import { Hash } from '@smithy/core/serde';
import { SignatureV4 } from '@smithy/signature-v4';
import type { AwsCredentialIdentity, HttpRequest } from '@smithy/types';
import { classifyStorageError } from './errors';

/**
 * The bulk of Sparkify's S3 traffic is small GETs and PUTs, and for them most of `S3Client`'s cost is its
 * middleware stack, not S3 (about 1 ms of client CPU per request against 0.2 ms here). This path sends those
 * requests itself, built from the SDK's own parts: the client's resolved region, endpoint rules (path-style or
 * virtual-host, custom endpoints) and memoized credential chain, the SDK's SigV4 signer with `UNSIGNED-PAYLOAD`,
 * and a keep-alive agent with bounded sockets. Errors are `S3ServiceException`s named by the S3 error code, as
 * the client's are, so `errors.ts` classifies both alike. Listing, multipart, copies and anything else stay on
 * `S3Client`.
 */

/** What a PUT sends: bytes, or a local file of a known size (re-read on each attempt, never held in memory). */
export type LeanBody = { bytes: Uint8Array } | { file: string; size: number };

export interface LeanS3Options {
  /** Upper bound on open sockets (keep-alive pool). Default 64, as `createS3Client`. */
  maxSockets?: number;
  /** No response byte for this long fails the request (retried). Default 120 s, as `createS3Client`. */
  requestTimeoutMs?: number;
}

interface Target {
  protocol: 'http:' | 'https:';
  hostname: string;
  port: number | undefined;
  /** The encoded path up to the key (`/bucket` for path-style, `` for virtual-host). */
  basePath: string;
  signingRegion: string;
  signer: SignatureV4;
}

interface Response {
  status: number;
  headers: http.IncomingHttpHeaders;
  /** Only for a successful GET; every other response is read to the end here. */
  body?: http.IncomingMessage;
}

/** A resolved config value: the SDK keeps some as providers, some as plain values. */
type Setting<T> = T | (() => Promise<T> | T);
const settingValue = async <T>(s: Setting<T>): Promise<T> =>
  typeof s === 'function' ? await (s as () => Promise<T> | T)() : s;

/** The parts of the client's resolved config this path needs (the SDK resolves them; we only read). */
interface ResolvedConfig {
  region: () => Promise<string>;
  maxAttempts: () => Promise<number>;
  credentials: () => Promise<AwsCredentialIdentity>;
  endpoint?: () => Promise<{ protocol: string; hostname: string; port?: number; path: string }>;
  isCustomEndpoint?: boolean;
  forcePathStyle?: boolean;
  useFipsEndpoint: Setting<boolean>;
  useDualstackEndpoint: Setting<boolean>;
  useAccelerateEndpoint?: Setting<boolean>;
  endpointProvider: (params: Record<string, unknown>) => {
    url: URL;
    properties?: { authSchemes?: { name?: string; signingRegion?: string; signingName?: string }[] };
  };
}

const UNSIGNED_PAYLOAD = 'UNSIGNED-PAYLOAD';
/** Names the SDK gives body-less error responses (HEAD, or a server that sends no XML). */
const STATUS_NAMES: Record<number, string> = {
  301: 'MovedPermanently',
  400: 'BadRequest',
  403: 'Forbidden',
  404: 'NotFound',
  409: 'Conflict',
  412: 'PreconditionFailed',
  500: 'InternalError',
  503: 'ServiceUnavailable',
};

/** S3 keys go in the path with each segment percent-encoded (RFC 3986 unreserved kept), as the SDK does. */
export function encodeKey(key: string): string {
  return key
    .split('/')
    .map((segment) =>
      encodeURIComponent(segment).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`),
    )
    .join('/');
}

function xmlField(xml: string, field: string): string | undefined {
  const m = new RegExp(`<${field}>([^<]*)</${field}>`).exec(xml);
  return m?.[1]
    ?.replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&quot;/g, '"')
    .replace(/&apos;/g, "'")
    .replace(/&amp;/g, '&');
}

/** The error S3Client would throw for this response: named by the XML `Code` (or the status), with `$metadata`. */
function serviceError(status: number, headers: http.IncomingHttpHeaders, body: string): S3ServiceException {
  const code = xmlField(body, 'Code') ?? STATUS_NAMES[status] ?? (status >= 500 ? 'InternalError' : 'UnknownError');
  const requestId = xmlField(body, 'RequestId') ?? (headers['x-amz-request-id'] as string | undefined);
  return new S3ServiceException({
    name: code,
    $fault: status >= 500 ? 'server' : 'client',
    $metadata: { httpStatusCode: status, requestId, attempts: 1 },
    // Only S3's own message: never the request, its headers or the signature details some servers echo.
    message: xmlField(body, 'Message') ?? code,
  });
}

/** The SDK's retry delay: full jitter over an exponential base, longer for throttling, capped at 20 s. */
function backoffMs(attempt: number, err: unknown): number {
  const name = (err as { name?: unknown }).name;
  const base = name === 'SlowDown' || /Throttl/.test(String(name)) ? 500 : 100;
  return Math.random() * Math.min(20_000, base * 2 ** (attempt - 1));
}

export class LeanS3 {
  private readonly config: ResolvedConfig;
  private readonly agents: { http: http.Agent; https: https.Agent };
  private readonly requestTimeoutMs: number;
  /** Per bucket: its endpoint, or null where the bucket needs what only S3Client does (S3 Express, sigv4a). */
  private readonly targets = new Map<string, Promise<Target | null>>();
  private credentials: AwsCredentialIdentity | undefined;
  /** Server time minus ours, learnt from a RequestTimeTooSkewed answer (the SDK corrects the same way). */
  private clockOffsetMs = 0;

  constructor(client: S3Client, opts: LeanS3Options = {}) {
    this.config = client.config as unknown as ResolvedConfig;
    const agentOptions = { keepAlive: true, maxSockets: opts.maxSockets ?? 64, scheduling: 'lifo' as const };
    this.agents = { http: new http.Agent(agentOptions), https: new https.Agent(agentOptions) };
    this.requestTimeoutMs = opts.requestTimeoutMs ?? 120_000;
  }

  /** Whether requests to this bucket go through this path (else the caller uses S3Client). */
  async handles(bucket: string): Promise<boolean> {
    return (await this.target(bucket)) !== null;
  }

  /** Where requests for this bucket go (no credentials in it), or undefined where S3Client must send them. */
  async endpointFor(bucket: string): Promise<{ url: string; signingRegion: string } | undefined> {
    const t = await this.target(bucket);
    if (!t) return undefined;
    const port = t.port ? `:${t.port}` : '';
    return { url: `${t.protocol}//${t.hostname}${port}${t.basePath}/`, signingRegion: t.signingRegion };
  }

  /** GET: the body as a stream (consume or destroy it). */
  async get(bucket: string, key: string): Promise<Readable> {
    const res = await this.send('GET', bucket, key);
    return res.body!;
  }

  /** HEAD: throws NotFound (404) when the object is absent, as `HeadObjectCommand` does. */
  async head(bucket: string, key: string): Promise<{ size: number; etag: string }> {
    const res = await this.send('HEAD', bucket, key);
    return {
      size: Number(res.headers['content-length'] ?? 0),
      etag: String(res.headers.etag ?? '').replace(/"/g, ''),
    };
  }

  /** PUT of a whole object; `ifNoneMatch: '*'` makes it a create that fails with PreconditionFailed (412). */
  async put(bucket: string, key: string, body: LeanBody, opts: { ifNoneMatch?: '*' } = {}): Promise<void> {
    const size = 'bytes' in body ? body.bytes.length : body.size;
    const headers: Record<string, string> = {
      'content-length': String(size),
      'content-type': 'application/octet-stream',
    };
    if (opts.ifNoneMatch) headers['if-none-match'] = opts.ifNoneMatch;
    await this.send('PUT', bucket, key, headers, body);
  }

  async delete(bucket: string, key: string): Promise<void> {
    await this.send('DELETE', bucket, key);
  }

  /** Closes the pooled sockets. */
  destroy(): void {
    this.agents.http.destroy();
    this.agents.https.destroy();
  }

  private target(bucket: string): Promise<Target | null> {
    let found = this.targets.get(bucket);
    if (!found) {
      found = this.resolveTarget(bucket);
      this.targets.set(bucket, found);
      found.catch(() => this.targets.delete(bucket)); // a failed lookup is tried again next time
    }
    return found;
  }

  /** The bucket's endpoint from the SDK's own endpoint rules, with the client's settings. */
  private async resolveTarget(bucket: string): Promise<Target | null> {
    const c = this.config;
    const region = await c.region();
    let endpoint: string | undefined;
    if (c.isCustomEndpoint && c.endpoint) {
      const e = await c.endpoint();
      endpoint = `${e.protocol}//${e.hostname}${e.port ? `:${e.port}` : ''}${e.path}`;
    }
    const resolved = c.endpointProvider({
      Bucket: bucket,
      Region: region,
      UseFIPS: await settingValue(c.useFipsEndpoint),
      UseDualStack: await settingValue(c.useDualstackEndpoint),
      Accelerate: (await settingValue(c.useAccelerateEndpoint)) ?? false,
      ForcePathStyle: c.forcePathStyle ?? false,
      ...(endpoint ? { Endpoint: endpoint } : {}),
    });
    const scheme = resolved.properties?.authSchemes?.[0];
    if (scheme && (scheme.name !== 'sigv4' || (scheme.signingName ?? 's3') !== 's3')) return null;
    const url = resolved.url;
    if (url.protocol !== 'http:' && url.protocol !== 'https:') return null;
    const signingRegion = scheme?.signingRegion ?? region;
    return {
      signingRegion,
      protocol: url.protocol,
      hostname: url.hostname,
      port: url.port ? Number(url.port) : undefined,
      basePath: url.pathname.replace(/\/+$/, ''),
      signer: new SignatureV4({
        credentials: () => this.currentCredentials(),
        region: signingRegion,
        service: 's3',
        sha256: Hash.bind(null, 'sha256'),
        // The path is encoded once, by encodeKey; S3 signs it as sent.
        uriEscapePath: false,
        applyChecksum: false,
      }),
    };
  }

  /** The SDK's credential chain, resolved once and again only when the credentials are about to expire. */
  private async currentCredentials(): Promise<AwsCredentialIdentity> {
    const fresh = this.credentials;
    if (fresh && (!fresh.expiration || fresh.expiration.getTime() - Date.now() > 5 * 60_000)) return fresh;
    this.credentials = await this.config.credentials();
    return this.credentials;
  }

  /** One request with the client's retry budget: outages, 5xx and throttling are retried with backoff. */
  private async send(
    method: string,
    bucket: string,
    key: string,
    headers: Record<string, string> = {},
    body?: LeanBody,
  ): Promise<Response> {
    const target = await this.target(bucket);
    if (!target) throw new Error(`internal: bucket '${bucket}' needs S3Client (not a plain SigV4 endpoint)`);
    const maxAttempts = await this.config.maxAttempts();
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.attempt(target, method, `${target.basePath}/${encodeKey(key)}`, headers, body);
      } catch (err) {
        const skewed = (err as { name?: unknown }).name === 'RequestTimeTooSkewed';
        if (attempt >= maxAttempts || (!skewed && classifyStorageError(err) !== 'infrastructure')) {
          if (err instanceof S3ServiceException) err.$metadata.attempts = attempt;
          throw err;
        }
        if (!skewed) await delay(backoffMs(attempt, err));
      }
    }
  }

  private async attempt(
    target: Target,
    method: string,
    path: string,
    headers: Record<string, string>,
    body: LeanBody | undefined,
  ): Promise<Response> {
    const defaultPort = target.protocol === 'https:' ? 443 : 80;
    const host = target.port && target.port !== defaultPort ? `${target.hostname}:${target.port}` : target.hostname;
    const unsigned: HttpRequest = {
      method,
      protocol: target.protocol,
      hostname: target.hostname,
      port: target.port,
      path,
      query: {},
      headers: { ...headers, host, 'x-amz-content-sha256': UNSIGNED_PAYLOAD },
    };
    const signed = await target.signer.sign(unsigned, { signingDate: new Date(Date.now() + this.clockOffsetMs) });
    return new Promise<Response>((resolve, reject) => {
      const req = (target.protocol === 'https:' ? https : http).request({
        agent: target.protocol === 'https:' ? this.agents.https : this.agents.http,
        method,
        hostname: target.hostname,
        port: target.port,
        path,
        headers: signed.headers,
      });
      req.setTimeout(this.requestTimeoutMs, () => {
        const timeout = new Error(`no response from S3 in ${this.requestTimeoutMs} ms`);
        timeout.name = 'TimeoutError';
        req.destroy(timeout);
      });
      req.once('error', reject);
      req.once('response', (res) => {
        const status = res.statusCode ?? 0;
        if (status >= 200 && status < 300) {
          if (method === 'GET') return resolve({ status, headers: res.headers, body: res });
          res.resume();
          res.once('end', () => resolve({ status, headers: res.headers }));
          res.once('error', reject);
          return;
        }
        const chunks: Buffer[] = [];
        let length = 0;
        res.on('data', (chunk: Buffer) => {
          if (length < 64 * 1024) chunks.push(chunk);
          length += chunk.length;
        });
        res.once('error', reject);
        res.once('end', () => {
          const err = serviceError(status, res.headers, Buffer.concat(chunks).toString('utf8'));
          const serverDate = Date.parse(String(res.headers.date ?? ''));
          if (err.name === 'RequestTimeTooSkewed' && !Number.isNaN(serverDate)) {
            this.clockOffsetMs = serverDate - Date.now();
          }
          reject(err);
        });
      });
      if (!body) req.end();
      else if ('bytes' in body) req.end(body.bytes);
      else {
        const file = createReadStream(body.file);
        file.once('error', (err) => req.destroy(err));
        file.pipe(req);
      }
    });
  }
}

const shared = new WeakMap<S3Client, LeanS3>();

/** The lean path over `client`'s settings, one per client (its sockets shared by every store using the client). */
export function leanS3For(client: S3Client): LeanS3 {
  let lean = shared.get(client);
  if (!lean) {
    lean = new LeanS3(client);
    shared.set(client, lean);
  }
  return lean;
}
