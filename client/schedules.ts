import type { Client, ScheduleDescription, ScheduleOverlapPolicy } from '@temporalio/client';
import { ScheduleNotFoundError } from '@temporalio/client';
import { durationToMs } from '../core/duration';
import { InvalidFieldError, TempoflowError } from '../core/errors';
import { checkCron, dagRunId } from '../core/schedule';
import type { ScheduleTiming } from '../core/schedule';
import { DAG_ID } from '../core/search-attributes';
import type { DagRunInput, DagRunState, DagSnapshot } from '../core/types';
import { DAG_RUN_WORKFLOW } from '../workflows/definitions';
import { formatDuration } from './render';
import { getRunStatus } from './runs';
import { resolveRunParams } from './run-params';

export const OVERLAP_CHOICES = ['skip', 'buffer_one', 'buffer_all', 'cancel_other', 'allow_all'] as const;
export type Overlap = (typeof OVERLAP_CHOICES)[number];

export interface CreateScheduleOptions {
  /** Default: the DAG id (one schedule per DAG). */
  scheduleId?: string;
  cron?: string;
  every?: string;
  start?: string;
  end?: string;
  overlap?: Overlap;
  catchupWindow?: string;
  paused?: boolean;
  note?: string;
  params?: Record<string, unknown>;
  taskQueue: string;
}

/** Puts a DAG on a Temporal Schedule. Each scheduled run's logical date is its scheduled time. */
export async function createSchedule(
  client: Client,
  dag: DagSnapshot,
  options: CreateScheduleOptions,
): Promise<string> {
  const params = resolveRunParams(dag, options.params ?? {});
  const timing = scheduleTiming(dag, options);
  const scheduleId = options.scheduleId ?? dag.id;
  const input: DagRunInput = { dag, params, logicalDate: '', dataInterval: null, fromSchedule: timing };
  const instant = (value: string | undefined, field: 'start' | 'end') => {
    if (value === undefined) return undefined;
    const date = new Date(value);
    if (Number.isNaN(date.getTime())) throw new InvalidFieldError(field, `'${value}' is not a date`);
    return date;
  };
  await client.schedule.create({
    scheduleId,
    spec: {
      ...('cron' in timing ? { cronExpressions: [timing.cron] } : { intervals: [{ every: timing.everyMs }] }),
      startAt: instant(options.start, 'start'),
      endAt: instant(options.end, 'end'),
    },
    action: {
      type: 'startWorkflow',
      workflowType: DAG_RUN_WORKFLOW,
      workflowId: `${dag.id}__scheduled`,
      taskQueue: options.taskQueue,
      args: [input],
      // Not itself a run (no DagId): it starts the run `<dag>__<scheduled time>`, or reports it if it exists.
      staticSummary: `${dag.id} (scheduled by ${scheduleId})`,
    },
    policies: {
      overlap: (options.overlap ?? 'skip').toUpperCase() as ScheduleOverlapPolicy,
      ...(options.catchupWindow ? { catchupWindow: durationToMs(options.catchupWindow, 'catchupWindow') } : {}),
    },
    state: { paused: options.paused ?? false, ...(options.note ? { note: options.note } : {}) },
  });
  return scheduleId;
}

function scheduleTiming(dag: DagSnapshot, options: CreateScheduleOptions): ScheduleTiming {
  if (options.cron && options.every)
    throw new InvalidFieldError('every', (name) => `give either ${name('cron')} or ${name('every')}, not both`);
  if (options.cron) {
    try {
      checkCron(options.cron);
    } catch (cause) {
      throw new InvalidFieldError('cron', `'${options.cron}' is not a valid cron expression`, { cause });
    }
    return { cron: options.cron };
  }
  if (options.every) {
    const everyMs = durationToMs(options.every, 'every');
    if (everyMs < 1000) throw new InvalidFieldError('every', `must be at least 1s, got '${options.every}'`);
    return { everyMs };
  }
  if (dag.schedule?.cron) return { cron: dag.schedule.cron };
  if (dag.schedule?.everyMs) return { everyMs: dag.schedule.everyMs };
  throw new InvalidFieldError(
    'cron',
    (name) => `DAG '${dag.id}' has no schedule of its own: give ${name('cron')} or ${name('every')}`,
  );
}

export interface ScheduleDetails {
  scheduleId: string;
  dagId: string;
  spec: string;
  paused: boolean;
  note?: string;
  nextRuns: string[];
  recentRuns: { runId: string; scheduledAt: string; state: DagRunState }[];
  overlap: string;
}

export async function describeSchedule(client: Client, scheduleId: string): Promise<ScheduleDetails> {
  let description: ScheduleDescription;
  try {
    description = await client.schedule.getHandle(scheduleId).describe();
  } catch (err) {
    if (err instanceof ScheduleNotFoundError) throw new TempoflowError(`no schedule '${scheduleId}'`, { cause: err });
    throw err;
  }
  const recentRuns = await Promise.all(
    description.info.recentActions.map(async (action) => {
      const scheduledAt = action.scheduledAt.toISOString();
      const runId = dagRunId(dagIdOf(description), scheduledAt);
      // The run starts a moment after the schedule's action: until then it is queued.
      const state = await getRunStatus(client, runId).then(
        (s) => s.state,
        (): DagRunState => 'queued',
      );
      return { runId, scheduledAt, state };
    }),
  );
  return {
    scheduleId,
    dagId: description.typedSearchAttributes.get(DAG_ID) ?? dagIdOf(description),
    spec: describeSpec(description),
    paused: description.state.paused,
    ...(description.state.note ? { note: description.state.note } : {}),
    nextRuns: description.info.nextActionTimes.map((d) => d.toISOString()),
    recentRuns,
    overlap: String(description.policies.overlap).toLowerCase(),
  };
}

function dagIdOf(description: ScheduleDescription): string {
  const input = description.action.args?.[0] as DagRunInput | undefined;
  return input?.dag.id ?? '';
}

/** `cron 0 0 * * *` or `every 1h` as given (Temporal answers a cron with its calendar form), then start and end. */
function describeSpec(description: ScheduleDescription): string {
  const { spec } = description;
  const timing = (description.action.args?.[0] as DagRunInput | undefined)?.fromSchedule;
  const parts = timing
    ? ['cron' in timing ? `cron ${timing.cron}` : `every ${formatDuration(timing.everyMs)}`]
    : [
        ...(spec.calendars ?? []).map((c) => `calendar ${JSON.stringify(c)}`),
        ...(spec.intervals ?? []).map((i) => `every ${formatDuration(Number(i.every))}`),
      ];
  if (spec.startAt) parts.push(`from ${spec.startAt.toISOString()}`);
  if (spec.endAt) parts.push(`until ${spec.endAt.toISOString()}`);
  return parts.join(', ');
}

export async function listSchedules(client: Client) {
  const found = [];
  for await (const schedule of client.schedule.list()) {
    found.push({
      scheduleId: schedule.scheduleId,
      paused: schedule.state.paused,
      note: schedule.state.note,
      nextRun: schedule.info.nextActionTimes[0]?.toISOString(),
      lastRun: schedule.info.recentActions.at(-1)?.scheduledAt.toISOString(),
    });
  }
  return found;
}

export const pauseSchedule = (client: Client, id: string, note?: string) => client.schedule.getHandle(id).pause(note);
export const unpauseSchedule = (client: Client, id: string, note?: string) =>
  client.schedule.getHandle(id).unpause(note);
export const triggerSchedule = (client: Client, id: string) => client.schedule.getHandle(id).trigger();
export const deleteSchedule = (client: Client, id: string) => client.schedule.getHandle(id).delete();
