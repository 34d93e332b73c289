/** Storage for activities: one `Store` API over S3 and local directories. */
export { createStore, type ObjectInfo, type Store, type StoreDeps, type WriteBody } from './store';
export {
  createS3Client,
  readDlCfgCredentials,
  s3ClientConfig,
  s3EndpointFromEnv,
  type S3ClientOptions,
} from './s3-client';
export { baseName, isS3Uri, joinUri, parseUri, type Location } from './uri';
export { mapLimit } from './concurrency';
export { assertSafeObjectKey, safeLocalPath, UnsafeObjectKeyError } from './local-path';
export { mirrorPrefix, s3Etag, type MirrorOptions, type MirrorProgress } from './mirror';
