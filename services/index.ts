/** Local infrastructure for development and tests: a Temporal dev server and an S3-compatible server. */
export { startDevServer, stopProcess } from './dev-server';
export type { DevServer, DevServerOptions } from './dev-server';
export { freePort, portOr } from './free-port';
export { s3EnvFor, startS3Server } from './s3-server';
export type { S3Server } from './s3-server';
export { cacheDir, ensureTool, findTool, S3_SERVER, TEMPORAL_CLI, ToolchainError } from './toolchain';
