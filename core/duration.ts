// '.js': the package has no exports map, and Node's ESM loader (the built package) needs the file's full name.
import { msToNumber } from '@temporalio/common/lib/time.js';
import { InvalidFieldError } from './errors';
import type { Duration } from './types';

/** Milliseconds of a `Duration`; an `InvalidFieldError` naming `field` when it is not a positive duration. */
export function durationToMs(value: Duration, field: string): number {
  let ms: number;
  try {
    ms = msToNumber(value as Parameters<typeof msToNumber>[0]);
  } catch {
    ms = NaN;
  }
  if (!Number.isFinite(ms) || ms < 0) {
    throw new InvalidFieldError(
      field,
      `${JSON.stringify(value)} is not a duration (use milliseconds or e.g. '30s', '5m', '2h', '1d')`,
    );
  }
  return ms;
}
