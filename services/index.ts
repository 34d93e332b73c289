/** Local infrastructure for development and tests: a Temporal dev server and an S3-compatible server. */
export { atProcessEnd, killOnExit, startDevServer, stopProcess, TEMPOFLOW_SEARCH_ATTRIBUTES } from './dev-server';
export type { DevServer, DevServerOptions } from './dev-server';
export { freePort, portOr } from './free-port';
export { s3EnvFor, startS3Server } from './s3-server';
export type { S3MetadataMode, S3Server, S3ServerOptions } from './s3-server';
export { ensureTemporalCli, findTemporalCli } from './temporal-cli';
export { cacheDir, ensureTool, findGo, findTool, S3_SERVER, TEMPORAL_CLI, ToolchainError } from './toolchain';
export type { FindToolOptions, GoTool } from './toolchain';
