import { execFile } from 'node:child_process';
import { accessSync, constants, mkdirSync, rmSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { delimiter, join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { promisify } from 'node:util';
import { TempoflowError } from '../core/errors';

/** A tool the project needs is missing and cannot be built here. */
export class ToolchainError extends TempoflowError {
  override name = 'ToolchainError';
}

/** Built tools are cached outside the repository, shared by checkouts and CI runs on one machine. */
export function cacheDir(): string {
  return process.env.TEMPOFLOW_CACHE_DIR || join(homedir(), '.cache', 'tempoflow');
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

export interface FindToolOptions {
  /** Build with `go install` into the cache when nothing else is found. */
  build?: boolean;
  /** Where the one "building…" line goes; default stderr (a build takes minutes, silence would look hung). */
  log?: (message: string) => void;
}

function isExecutable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

function onPath(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (!dir) continue;
    const candidate = join(dir, name);
    if (isExecutable(candidate)) return candidate;
  }
  return undefined;
}

/** `go` on PATH, else the official tarball's location (CI images often do not put it on PATH). */
export function findGo(): string | undefined {
  return onPath('go') ?? (isExecutable('/usr/local/go/bin/go') ? '/usr/local/go/bin/go' : undefined);
}

/** Path a tool has, or would have, in the cache. */
export function cachedToolPath(tool: GoTool): string {
  return join(cacheDir(), 'bin', tool.name);
}

// A build in progress holds this directory (mkdir is atomic), so concurrent processes wait for one build
// instead of racing two `go install`s writing the same file.
const lockPath = (tool: GoTool) => join(cacheDir(), 'bin', `.${tool.name}.building`);
const STALE_LOCK_MS = 30 * 60_000;

function lockHeld(tool: GoTool): boolean {
  try {
    return Date.now() - statSync(lockPath(tool)).mtimeMs < STALE_LOCK_MS;
  } catch {
    return false;
  }
}

/**
 * Finds a tool: its env var, PATH, the cache; else builds it with `go install` into the cache when `build`
 * is set and Go is installed. Returns undefined when none of these works. Idempotent and safe to call from
 * several processes at once.
 */
export async function findTool(tool: GoTool, options: FindToolOptions = {}): Promise<string | undefined> {
  const explicit = process.env[tool.envVar];
  if (explicit) {
    if (!isExecutable(explicit)) throw new ToolchainError(`${tool.envVar}=${explicit} is not an executable file`);
    return explicit;
  }
  const found = onPath(tool.name);
  if (found) return found;
  const cached = cachedToolPath(tool);
  // A half-copied binary is not a binary: wait while another process's build holds the lock.
  while (lockHeld(tool)) await delay(1000);
  if (isExecutable(cached)) return cached;
  if (!options.build) return undefined;
  const go = findGo();
  if (!go) return undefined;

  mkdirSync(join(cacheDir(), 'bin'), { recursive: true });
  try {
    mkdirSync(lockPath(tool));
  } catch (cause) {
    if ((cause as NodeJS.ErrnoException).code !== 'EEXIST') {
      throw new ToolchainError(`cannot write to ${cacheDir()}/bin (set TEMPOFLOW_CACHE_DIR?)`, { cause });
    }
    // Another process took the lock between our check and now, or a crashed build left it stale.
    if (!lockHeld(tool)) rmSync(lockPath(tool), { recursive: true, force: true });
    return findTool(tool, options);
  }
  const log = options.log ?? ((message: string) => console.error(message));
  log(
    `building ${tool.name} (go install ${tool.goPackage}) into ${cacheDir()}/bin: first time only, takes a few minutes...`,
  );
  try {
    await promisify(execFile)(go, ['install', tool.goPackage], {
      env: { ...process.env, GOBIN: join(cacheDir(), 'bin') },
      maxBuffer: 64 * 1024 * 1024,
    });
  } catch (cause) {
    throw new ToolchainError(
      `building ${tool.name} failed (go install ${tool.goPackage}): ${(cause as Error).message.trim()}\n` +
        `Put '${tool.name}' on PATH or set ${tool.envVar} to an existing binary instead.`,
      { cause },
    );
  } finally {
    rmSync(lockPath(tool), { recursive: true, force: true });
  }
  if (!isExecutable(cached))
    throw new ToolchainError(`go install ${tool.goPackage} succeeded but ${cached} is missing`);
  return cached;
}

/** Like findTool with building, but a clear ToolchainError saying what to install when the tool cannot be had. */
export async function ensureTool(tool: GoTool, log?: (message: string) => void): Promise<string> {
  const path = await findTool(tool, { build: true, ...(log ? { log } : {}) });
  if (path) return path;
  throw new ToolchainError(
    `${tool.name} not found: install Go (https://go.dev/dl) so tempoflow can build it into ${cacheDir()}/bin, ` +
      `put '${tool.name}' on PATH, or set ${tool.envVar} to its path`,
    {
      cause: new Error(
        `no ${tool.envVar}, no '${tool.name}' on PATH, none cached, and no 'go' on PATH or in /usr/local/go/bin`,
      ),
    },
  );
}
