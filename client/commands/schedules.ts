/** `tempoflow schedules ...`: put DAGs on Temporal Schedules and operate them. */
import { ScheduleNotFoundError } from '@temporalio/client';
import { Option } from 'commander';
import type { Command } from 'commander';
import { TempoflowError } from '../../core/errors';
import type { CliContext } from '../context';
import { colorState, formatInstant, table } from '../render';
import {
  createSchedule,
  deleteSchedule,
  describeSchedule,
  listSchedules,
  OVERLAP_CHOICES,
  pauseSchedule,
  triggerSchedule,
  unpauseSchedule,
} from '../schedules';
import type { Overlap } from '../schedules';
import { confOption, paramOption, parseParams } from './trigger';

interface CreateFlags {
  id?: string;
  cron?: string;
  every?: string;
  start?: string;
  end?: string;
  overlap: Overlap;
  catchupWindow?: string;
  paused?: boolean;
  note?: string;
  param: string[];
  conf?: string;
}

export function register(program: Command, ctx: CliContext): void {
  const group = program
    .command('schedules')
    .description('run DAGs on a schedule (Temporal Schedules): each run is for its scheduled time');

  group
    .command('create')
    .description("put a DAG on a schedule (default: the DAG's own schedule)")
    .argument('<dag>', 'DAG id')
    .option('--id <scheduleId>', 'schedule id (default: the DAG id)')
    .option('--cron <expr>', "cron expression in UTC, e.g. '0 0 * * *' for daily at midnight")
    .option('--every <duration>', "a fixed interval, e.g. '1h', '1d'")
    .option('--start <date>', 'no runs before this instant')
    .option('--end <date>', 'no runs after this instant')
    .addOption(
      new Option('--overlap <policy>', 'what to do when a run is due while the previous one runs')
        .choices(OVERLAP_CHOICES)
        .default('skip'),
    )
    .option('--catchup-window <duration>', "how far back to run missed times after an outage, e.g. '1d'")
    .option('--paused', 'create it paused')
    .option('--note <text>', 'a note shown with the schedule')
    .addOption(paramOption('a param for every run (repeatable)'))
    .addOption(confOption())
    .action(async (dagId: string, flags: CreateFlags) => {
      const dag = ctx.getDag(dagId);
      const client = await ctx.client();
      const scheduleId = await createSchedule(client, dag, {
        ...flags,
        params: parseParams(flags),
        taskQueue: ctx.globals.taskQueue,
      });
      const details = await describeSchedule(client, scheduleId);
      ctx.out(`${ctx.style.green('✔')} schedule ${ctx.style.bold(scheduleId)} runs ${dag.id}: ${details.spec}`);
      if (details.nextRuns[0]) ctx.out(`  next run: ${details.nextRuns[0]}`);
      const ui = ctx.uiUrl();
      if (ui)
        ctx.out(
          ctx.style.dim(`  ${ui}/namespaces/${encodeURIComponent(ctx.globals.namespace)}/schedules/${scheduleId}`),
        );
    });

  group
    .command('list')
    .description('list schedules')
    .option('--json', 'print JSON')
    .action(async (flags: { json?: boolean }) => {
      const schedules = await listSchedules(await ctx.client());
      if (flags.json) return ctx.json(schedules);
      if (!schedules.length) return ctx.out(ctx.style.dim('no schedules'));
      ctx.out(
        table(
          ['schedule', 'state', 'next run', 'last run', 'note'],
          schedules.map((s) => [
            s.scheduleId,
            s.paused ? ctx.style.yellow('paused') : ctx.style.green('active'),
            formatInstant(s.nextRun),
            formatInstant(s.lastRun),
            s.note ?? '',
          ]),
          ctx.style,
        ),
      );
    });

  group
    .command('describe')
    .description('spec, next run times, and recent runs with their states')
    .argument('<scheduleId>')
    .option('--json', 'print JSON')
    .action(async (scheduleId: string, flags: { json?: boolean }) => {
      const details = await describeSchedule(await ctx.client(), scheduleId);
      if (flags.json) return ctx.json(details);
      const s = ctx.style;
      ctx.out(
        `${s.bold('schedule')} ${details.scheduleId}  ${details.paused ? s.yellow('paused') : s.green('active')}`,
      );
      ctx.out(`  ${s.dim('dag'.padEnd(10))} ${details.dagId}`);
      ctx.out(`  ${s.dim('spec'.padEnd(10))} ${details.spec}`);
      ctx.out(`  ${s.dim('overlap'.padEnd(10))} ${details.overlap}`);
      if (details.note) ctx.out(`  ${s.dim('note'.padEnd(10))} ${details.note}`);
      ctx.out(`  ${s.dim('next runs'.padEnd(10))} ${details.nextRuns.slice(0, 5).join(', ') || s.dim('none')}`);
      if (details.recentRuns.length) {
        ctx.out();
        ctx.out(
          table(
            ['scheduled at', 'run', 'state'],
            details.recentRuns.map((r) => [r.scheduledAt, r.runId, colorState(r.state, s)]),
            s,
            { indent: 2 },
          ),
        );
      }
    });

  const simple = (
    name: string,
    description: string,
    fn: (id: string, note?: string) => Promise<unknown>,
    done: string,
  ) =>
    group
      .command(name)
      .description(description)
      .argument('<scheduleId>')
      .option('--note <text>', 'why (shown with the schedule)')
      .action(async (scheduleId: string, flags: { note?: string }) => {
        try {
          await fn(scheduleId, flags.note);
        } catch (err) {
          if (err instanceof ScheduleNotFoundError)
            throw new TempoflowError(`no schedule '${scheduleId}'`, { cause: err });
          throw err;
        }
        ctx.out(`${ctx.style.green('✔')} ${done} ${ctx.style.bold(scheduleId)}`);
      });
  simple('pause', 'pause a schedule', async (id, note) => pauseSchedule(await ctx.client(), id, note), 'paused');
  simple(
    'unpause',
    'resume a paused schedule',
    async (id, note) => unpauseSchedule(await ctx.client(), id, note),
    'unpaused',
  );
  simple('trigger', 'start a run now', async (id) => triggerSchedule(await ctx.client(), id), 'triggered');
  simple(
    'delete',
    'delete a schedule (its runs stay)',
    async (id) => deleteSchedule(await ctx.client(), id),
    'deleted',
  );
}
