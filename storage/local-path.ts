import path from 'node:path';
import { NonRetryableTaskError } from '../core/errors';

/**
 * An object key that would land outside the local folder it is copied into (`..` segments, an absolute path,
 * a backslash, which is a separator on Windows, or a NUL byte). S3 accepts such keys, so whoever can write to a
 * bucket could otherwise make a worker write anywhere it may. Non-retryable: the key will not change.
 */
export class UnsafeObjectKeyError extends NonRetryableTaskError {
  override name = 'UnsafeObjectKeyError';
  constructor(
    readonly key: string,
    readonly root: string,
    reason: string,
  ) {
    super(
      `object key '${key}' ${reason}: refusing to write it under the local folder ${root} ` +
        `(rename or delete that object in the bucket)`,
      'UnsafeObjectKeyError',
    );
  }
}

/**
 * The local file for object `key` (`/`-separated, relative to a listed prefix) under the folder `root`, or an
 * `UnsafeObjectKeyError` if the key would escape `root`. Every place an object key becomes a local path goes
 * through here.
 */
export function safeLocalPath(root: string, key: string): string {
  const refuse = (reason: string): never => {
    throw new UnsafeObjectKeyError(key, root, reason);
  };
  assertSafeObjectKey(key, root);
  const segments = key.split('/');
  // Same form as path.join(root, ...) gave before (callers compare it with paths they list under `root`).
  const file = path.join(root, ...segments);
  // Defence in depth: whatever the checks above missed, the result must lie strictly inside the folder.
  const relative = path.relative(path.resolve(root), path.resolve(file));
  if (relative === '' || relative === '..' || relative.startsWith(`..${path.sep}`) || path.isAbsolute(relative))
    refuse('is outside the folder');
  return file;
}

/** Throws `UnsafeObjectKeyError` (naming `root`, the folder it was to be written under) if `key` could escape it. */
export function assertSafeObjectKey(key: string, root: string): void {
  const refuse = (reason: string): never => {
    throw new UnsafeObjectKeyError(key, root, reason);
  };
  if (key === '') refuse('is empty');
  if (key.includes('\\')) refuse('contains a backslash');
  if (key.includes('\0')) refuse('contains a NUL byte');
  if (path.posix.isAbsolute(key) || path.win32.isAbsolute(key)) refuse('is an absolute path');
  if (key.split('/').some((segment) => segment === '..')) refuse("has a '..' segment");
}
