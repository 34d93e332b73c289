import { msToNumber } from '@temporalio/common/lib/time';
import type { Duration } from './types';

/** Milliseconds of a `Duration`; throws `what` in the message when it is not a positive duration. */
export function durationToMs(value: Duration, what: string): number {
  let ms: number;
  try {
    ms = msToNumber(value as Parameters<typeof msToNumber>[0]);
  } catch {
    ms = NaN;
  }
  if (!Number.isFinite(ms) || ms < 0) {
    throw new TypeError(
      `${what}: ${JSON.stringify(value)} is not a duration (use milliseconds or e.g. '30s', '5m', '2h', '1d')`,
    );
  }
  return ms;
}
