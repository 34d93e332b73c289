import { CronExpressionParser } from 'cron-parser';
import { InvalidFieldError } from './errors';
import type { DagSnapshot, DataInterval } from './types';

/** A DAG's schedule in the form the runner and backfill use: a cron expression or a fixed interval (UTC). */
export type ScheduleTiming = { cron: string } | { everyMs: number };

/**
 * The run id of a DAG run: one DAG and logical date is one run, whoever starts it (trigger, schedule, backfill);
 * starting it again reports the existing run.
 */
export function dagRunId(dagId: string, logicalDate: string): string {
  return `${dagId}__${logicalDate}`;
}

/** Deterministic (pure) so the runner workflow can use it to find a scheduled run's data interval. */
export function previousFireTime(timing: ScheduleTiming, at: Date): Date {
  if ('everyMs' in timing) return new Date(at.getTime() - timing.everyMs);
  return CronExpressionParser.parse(timing.cron, { currentDate: at, tz: 'UTC' }).prev().toDate();
}

export function nextFireTime(timing: ScheduleTiming, after: Date): Date {
  if ('everyMs' in timing) return new Date(after.getTime() + timing.everyMs);
  return CronExpressionParser.parse(timing.cron, { currentDate: after, tz: 'UTC' }).next().toDate();
}

/**
 * The data intervals whose start lies in `[from, to]` (both inclusive, as in Airflow's backfill), in order.
 * For `every`, intervals are aligned to `from`.
 */
export function intervalsBetween(timing: ScheduleTiming, from: Date, to: Date, limit = 10_000): DataInterval[] {
  const intervals: DataInterval[] = [];
  // The first fire time at or after `from`.
  let start = 'everyMs' in timing ? from : nextFireTime(timing, new Date(from.getTime() - 1));
  while (start.getTime() <= to.getTime()) {
    const end = nextFireTime(timing, start);
    intervals.push({ start: start.toISOString(), end: end.toISOString() });
    if (intervals.length > limit)
      throw new InvalidFieldError(
        'to',
        (name) =>
          `more than ${limit} intervals between ${name('from')} ${from.toISOString()} and ${name('to')} ${to.toISOString()}: give a shorter range`,
      );
    start = end;
  }
  return intervals;
}

export function dagTiming(dag: DagSnapshot): ScheduleTiming | undefined {
  if (dag.schedule?.cron) return { cron: dag.schedule.cron };
  if (dag.schedule?.everyMs) return { everyMs: dag.schedule.everyMs };
  return undefined;
}

/** Throws a readable error for an invalid cron expression. */
export function checkCron(expression: string): void {
  CronExpressionParser.parse(expression, { tz: 'UTC' });
}
