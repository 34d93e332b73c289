import { execFile } from 'node:child_process';
import { accessSync, constants, existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { delimiter, join } from 'node:path';
import { promisify } from 'node:util';
import { TempoflowError } from '../core/errors';

/** A tool the project needs is missing and cannot be built here. */
export class ToolchainError extends TempoflowError {
  override name = 'ToolchainError';
}

/** Built tools are cached outside the repository, shared by checkouts and CI runs on one machine. */
export function cacheDir(): string {
  return process.env.TEMPOFLOW_CACHE_DIR ?? join(homedir(), '.cache', 'tempoflow');
}

export interface GoTool {
  /** Executable name, also looked up on PATH. */
  name: string;
  /** Environment variable naming an explicit path. */
  envVar: string;
  /** `go install` target, pinned. */
  goPackage: string;
}

export const TEMPORAL_CLI: GoTool = {
  name: 'temporal',
  envVar: 'TEMPORAL_CLI_PATH',
  // Later tags carry `replace` directives and cannot be go-installed.
  goPackage: 'github.com/temporalio/cli/cmd/temporal@v1.5.1',
};

export const S3_SERVER: GoTool = {
  name: 'versitygw',
  envVar: 'TEMPOFLOW_S3_SERVER_PATH',
  goPackage: 'github.com/versity/versitygw/cmd/versitygw@v1.8.0',
};

function isExecutable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function onPath(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    const candidate = join(dir, name);
    if (dir && isExecutable(candidate)) return candidate;
  }
  return undefined;
}

function findGo(): string | undefined {
  return onPath('go') ?? (isExecutable('/usr/local/go/bin/go') ? '/usr/local/go/bin/go' : undefined);
}

/**
 * Finds a tool: its env var, PATH, the cache; else builds it with `go install` into the cache when `build`
 * is set. Returns undefined when none of these works.
 */
export async function findTool(
  tool: GoTool,
  options: { build?: boolean; log?: (message: string) => void } = {},
): Promise<string | undefined> {
  const explicit = process.env[tool.envVar];
  if (explicit) {
    if (!isExecutable(explicit)) throw new ToolchainError(`${tool.envVar}=${explicit} is not an executable file`);
    return explicit;
  }
  const found = onPath(tool.name);
  if (found) return found;
  const cached = join(cacheDir(), 'bin', tool.name);
  if (existsSync(cached) && isExecutable(cached)) return cached;
  if (!options.build) return undefined;
  const go = findGo();
  if (!go) return undefined;
  options.log?.(`building ${tool.name} with go install ${tool.goPackage} (first time only, takes a few minutes)...`);
  try {
    await promisify(execFile)(go, ['install', tool.goPackage], {
      env: { ...process.env, GOBIN: join(cacheDir(), 'bin'), GOFLAGS: '-mod=mod' },
      maxBuffer: 64 * 1024 * 1024,
    });
  } catch (cause) {
    throw new ToolchainError(`go install ${tool.goPackage} failed: ${(cause as Error).message}`, { cause });
  }
  return cached;
}

/** Like findTool with building, but a clear error saying what to install when the tool cannot be had. */
export async function ensureTool(tool: GoTool, log?: (message: string) => void): Promise<string> {
  const path = await findTool(tool, { build: true, ...(log ? { log } : {}) });
  if (path) return path;
  throw new ToolchainError(
    `${tool.name} not found: install Go (https://go.dev/dl) so tempoflow can build it, put '${tool.name}' on PATH, or set ${tool.envVar}`,
  );
}
