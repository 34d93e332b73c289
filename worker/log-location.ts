/** Where task logs are kept: resolved apart from task-logs.ts so the CLI and settings load no storage code. */
import { TempoflowError } from '../core/errors';

export const LOG_LOCATION_ENV = 'TEMPOFLOW_LOG_LOCATION';
export const LOG_LOCATION_FLAG = '--log-location';

/**
 * The log location from the flag, else the environment, else `fallback` (a project's default); undefined when
 * none sets one (then no task logs are kept). A folder or `s3://bucket/prefix`.
 *
 * @throws TempoflowError naming the flag or variable when the value is not a location.
 */
export function resolveLogLocation(
  flag: string | undefined,
  env: NodeJS.ProcessEnv = process.env,
  fallback?: string,
): string | undefined {
  const fromEnv = env[LOG_LOCATION_ENV];
  const [value, source] =
    flag !== undefined
      ? [flag, LOG_LOCATION_FLAG]
      : fromEnv
        ? [fromEnv, LOG_LOCATION_ENV]
        : [fallback, "the project's worker.logLocation"];
  const trimmed = value?.trim();
  if (!trimmed) return undefined;
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(trimmed)?.[1]?.toLowerCase();
  if (scheme !== undefined && !['s3', 's3a', 's3n', 'file'].includes(scheme)) {
    throw new TempoflowError(`${source} '${trimmed}' is not a log location: use a folder or s3://bucket/prefix`);
  }
  if (/^s3[an]?:\/\/(\/|$)/.test(trimmed)) {
    throw new TempoflowError(`${source} '${trimmed}' names no bucket: use s3://bucket/prefix`);
  }
  return trimmed;
}
