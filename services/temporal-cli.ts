/**
 * The Temporal CLI, whose `server start-dev` is tempoflow's local Temporal server. Found in this order:
 * $TEMPORAL_CLI_PATH, `temporal` on PATH, the cached build in ${TEMPOFLOW_CACHE_DIR:-~/.cache/tempoflow}/bin;
 * else built there with Go. The Temporal SDK could download one instead, but only with internet access.
 */
import { ensureTool, findTool, TEMPORAL_CLI, ToolchainError } from './toolchain';
import type { FindToolOptions } from './toolchain';

export { ToolchainError };

/**
 * Path of a Temporal CLI, building it with `go install …@v1.5.1` when `build` is set and Go is installed
 * (one log line; quiet when cached). Undefined when there is none: callers may then let the SDK download one
 * (`TestWorkflowEnvironment.createLocal()` without an executable), which needs internet access.
 */
export function findTemporalCli(opts: FindToolOptions = {}): Promise<string | undefined> {
  return findTool(TEMPORAL_CLI, opts);
}

/** Like findTemporalCli with building, but throws a ToolchainError saying what to install when none can be had. */
export function ensureTemporalCli(opts: { log?: (message: string) => void } = {}): Promise<string> {
  return ensureTool(TEMPORAL_CLI, opts.log);
}
