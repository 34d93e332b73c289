import { NonRetryableTaskError } from '../core/errors';
import type { Store } from './store';
import { parseUri } from './uri';

/**
 * What a storage failure means for the task that met it:
 * - `infrastructure`: the service or the network failed (connection refused or reset, timeouts, DNS, 5xx,
 *   throttling). Retrying later fixes it: the task retries with backoff.
 * - `access`: the worker's credentials, the bucket name, the region or file permissions are wrong. Retrying
 *   never fixes it: the task fails at once, naming the bucket and the setting to fix.
 * - `not-found`: the object or file does not exist (callers decide what that means).
 * - `other`: anything else (left as it is, retried like any unexpected error).
 */
export type StorageErrorKind = 'infrastructure' | 'access' | 'not-found' | 'other';

/** Credentials, bucket, region or permissions are wrong: non-retryable, the message says what to fix. */
export class StorageAccessError extends NonRetryableTaskError {
  override name = 'StorageAccessError';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, 'StorageAccessError', options);
  }
}

/** The storage service or the network failed; the task is retried with backoff. */
export class StorageUnavailableError extends Error {
  override name = 'StorageUnavailableError';
  readonly code: string | undefined;
  constructor(message: string, options: { cause?: unknown; code?: string } = {}) {
    super(message, { cause: options.cause });
    this.code = options.code;
  }
}

const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'ESOCKETTIMEDOUT',
  'EHOSTUNREACH',
  'EHOSTDOWN',
  'ENETUNREACH',
  'ENETDOWN',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ERR_STREAM_PREMATURE_CLOSE',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
  // Local file systems: transient resource shortages and I/O errors (a network mount going away).
  'EAGAIN',
  'EBUSY',
  'EMFILE',
  'ENFILE',
  'EIO',
  'ESTALE',
]);

const TRANSIENT_NAMES = new Set([
  'TimeoutError',
  'RequestTimeout',
  'RequestTimeoutException',
  'NetworkingError',
  'InternalError',
  'ServiceUnavailable',
  'SlowDown',
  'Throttling',
  'ThrottlingException',
  'ThrottledException',
  'RequestThrottled',
  'RequestThrottledException',
  'RequestLimitExceeded',
  'TooManyRequestsException',
  'BandwidthLimitExceeded',
  'PriorRequestNotComplete',
]);

/** S3 error names that mean the credentials are not accepted, with the settings that hold them. */
const CREDENTIAL_NAMES: Record<string, string> = {
  InvalidAccessKeyId: 'the access key id is unknown to the server',
  InvalidClientTokenId: 'the access key id is unknown to the server',
  UnrecognizedClientException: 'the access key id is unknown to the server',
  // versitygw's name for an unknown access key (with status 404).
  XAdminUserNotFound: 'the access key id is unknown to the server',
  AuthFailure: 'the credentials were refused',
  SignatureDoesNotMatch: 'the secret access key does not match the access key id (or the clock is off)',
  ExpiredToken: 'the session credentials have expired',
  ExpiredTokenException: 'the session credentials have expired',
  InvalidToken: 'the session token is invalid',
  TokenRefreshRequired: 'the session credentials must be refreshed',
  CredentialsProviderError: 'no credentials were found',
};

const PERMISSION_NAMES = new Set(['AccessDenied', 'AccessDeniedException', 'AllAccessDisabled', 'Forbidden']);
const REGION_NAMES = new Set([
  'PermanentRedirect',
  'AuthorizationHeaderMalformed',
  'IllegalLocationConstraintException',
  'Redirect',
]);
const LOCAL_ACCESS_CODES = new Set(['EACCES', 'EPERM', 'EROFS']);

const CREDENTIAL_SETTINGS =
  "the worker's AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, AWS_PROFILE, or dl.cfg (TEMPOFLOW_DL_CFG)";

interface ErrorShape {
  name?: unknown;
  code?: unknown;
  message?: unknown;
  cause?: unknown;
  errors?: unknown;
  $retryable?: unknown;
  $fault?: unknown;
  $metadata?: { httpStatusCode?: unknown };
}

/** The error and what it wraps (`cause`, and an AggregateError's `errors`, as from a dual-stack connect). */
function chain(err: unknown): ErrorShape[] {
  const out: ErrorShape[] = [];
  const queue: unknown[] = [err];
  while (queue.length > 0 && out.length < 16) {
    const e = queue.shift();
    if (typeof e !== 'object' || e === null) continue;
    const shape = e as ErrorShape;
    out.push(shape);
    if (shape.cause !== undefined) queue.push(shape.cause);
    if (Array.isArray(shape.errors)) queue.push(...(shape.errors as unknown[]));
  }
  return out;
}

const str = (v: unknown): string => (typeof v === 'string' ? v : '');
const status = (e: ErrorShape): number | undefined =>
  typeof e.$metadata?.httpStatusCode === 'number' ? e.$metadata.httpStatusCode : undefined;

/** The object or file does not exist (a missing bucket is an access error, not this). */
export function isNotFound(err: unknown): boolean {
  return classifyStorageError(err) === 'not-found';
}

/** Classifies an error from the AWS SDK (S3) or node's fs/net. Pure: looks only at names, codes and statuses. */
export function classifyStorageError(err: unknown): StorageErrorKind {
  if (err instanceof StorageAccessError) return 'access';
  if (err instanceof StorageUnavailableError) return 'infrastructure';
  const errors = chain(err);
  const top = errors[0];
  if (!top) return 'other';
  const name = str(top.name);
  const code = str(top.code);
  const httpStatus = status(top);
  // Cancellation is neither: the task was asked to stop.
  if (name === 'AbortError' || code === 'ABORT_ERR') return 'other';
  if (
    name === 'NoSuchBucket' ||
    name === 'InvalidBucketName' ||
    name in CREDENTIAL_NAMES ||
    PERMISSION_NAMES.has(name) ||
    REGION_NAMES.has(name)
  ) {
    return 'access';
  }
  if (/could not load credentials/i.test(str(top.message))) return 'access';
  if (LOCAL_ACCESS_CODES.has(code)) return 'access';
  if (name === 'NoSuchKey' || name === 'NotFound' || code === 'ENOENT' || httpStatus === 404) return 'not-found';
  if (httpStatus === 401 || httpStatus === 403 || httpStatus === 301) return 'access';
  for (const e of errors) {
    const s = status(e);
    if (NETWORK_CODES.has(str(e.code)) || TRANSIENT_NAMES.has(str(e.name))) return 'infrastructure';
    if (s !== undefined && (s >= 500 || s === 429 || s === 408)) return 'infrastructure';
    if (e.$retryable || e.$fault === 'server') return 'infrastructure';
  }
  return 'other';
}

function buckets(uris: readonly string[]): string[] {
  const out = new Set<string>();
  for (const uri of uris) {
    try {
      const loc = parseUri(uri);
      if (loc.kind === 's3') out.add(loc.bucket);
    } catch {
      // not a storage URI (e.g. a local file argument): nothing to name
    }
  }
  return [...out];
}

/** Why access failed and which setting fixes it, for the message of a `StorageAccessError`. */
function accessAdvice(err: unknown, bucketNames: string[]): string {
  const top = chain(err)[0] ?? {};
  const name = str(top.name);
  const bucket = bucketNames.length > 0 ? bucketNames.map((b) => `'${b}'`).join(' / ') : undefined;
  const inBucket = bucket ? ` (bucket ${bucket})` : '';
  if (LOCAL_ACCESS_CODES.has(str(top.code))) {
    return `permission denied (${str(top.code)}): give the worker's user access to this path, or choose another input/output`;
  }
  if (name === 'NoSuchBucket') {
    return (
      // Said the same from a task (its input/output params) and from the CLI (`generate --out`, `sparkify vacuum`).
      `bucket ${bucket ?? ''} does not exist: check the bucket's name in the location, and AWS_ENDPOINT_URL_S3 ` +
      `(the S3 server used) and AWS_REGION`
    );
  }
  if (name === 'InvalidBucketName') {
    return `${bucket ?? 'the bucket'} is not a valid bucket name: check the bucket's name in the location`;
  }
  if (REGION_NAMES.has(name) || status(top) === 301) {
    return `bucket ${bucket ?? ''} is in another region than the worker's: set AWS_REGION to the bucket's region`;
  }
  const credentialProblem =
    CREDENTIAL_NAMES[name] ?? (/could not load credentials/i.test(str(top.message)) ? 'no credentials were found' : '');
  if (credentialProblem) return `${credentialProblem}${inBucket}: check ${CREDENTIAL_SETTINGS}`;
  return (
    `access denied${inBucket}: give the worker's credentials read/write access to the bucket, or use other ` +
    `credentials (${CREDENTIAL_SETTINGS})`
  );
}

/**
 * The error to throw for a storage failure during `op` on `uris`: a `StorageAccessError` (non-retryable) or a
 * `StorageUnavailableError` (retryable) naming the URI, or the original error (not-found, other) so callers'
 * checks of `code`/`name` keep working.
 */
export function storageError(err: unknown, uris: string | readonly string[], op = 'accessing'): unknown {
  const list = typeof uris === 'string' ? [uris] : uris;
  const kind = classifyStorageError(err);
  if (err instanceof StorageAccessError || err instanceof StorageUnavailableError) return err;
  const what = `${op} ${list.join(' -> ')}`;
  const top = chain(err)[0] ?? {};
  const detail = [str(top.name) !== 'Error' ? str(top.name) : '', str(top.code), str(top.message)]
    .filter((x, i, all) => x && all.indexOf(x) === i)
    .join(': ');
  if (kind === 'access') {
    return new StorageAccessError(`${what}: ${accessAdvice(err, buckets(list))} [${detail}]`, { cause: err });
  }
  if (kind === 'infrastructure') {
    const where = buckets(list).length > 0 ? 'S3' : 'storage';
    const code = str(top.code) || str(top.name) || undefined;
    return new StorageUnavailableError(`${where} unavailable during ${what} (${detail})`, {
      cause: err,
      code,
    });
  }
  return err;
}

/** Store methods whose second argument is a body to write, never named in a message (it may be anything). */
const BODY_METHODS: ReadonlySet<string> = new Set<keyof Store>(['write', 'createIfAbsent']);

/**
 * The same store with every failure classified (`storageError`): an outage becomes a retryable
 * `StorageUnavailableError`, wrong credentials or a missing bucket a non-retryable `StorageAccessError`. Every
 * method is wrapped, including ones added to `Store` later; its string arguments are the URIs named, except a body.
 */
export function withStorageErrors(store: Store): Store {
  const wrapped: Record<string, unknown> = {};
  for (const [op, fn] of Object.entries(store)) {
    if (typeof fn !== 'function') {
      wrapped[op] = fn;
      continue;
    }
    wrapped[op] = async (...args: unknown[]) => {
      try {
        return await (fn as (...a: unknown[]) => Promise<unknown>)(...args);
      } catch (err) {
        const named = BODY_METHODS.has(op) ? args.slice(0, 1) : args;
        throw storageError(
          err,
          named.filter((a): a is string => typeof a === 'string'),
          op,
        );
      }
    };
  }
  return wrapped as unknown as Store;
}
