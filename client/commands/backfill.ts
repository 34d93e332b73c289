/** `tempoflow backfill ...`: one run per interval of a DAG's schedule, as a durable workflow. */
import { WorkflowNotFoundError } from '@temporalio/client';
import type { Client } from '@temporalio/client';
import { SingleBar } from 'cli-progress';
import { InvalidArgumentError, Option } from 'commander';
import type { Command } from 'commander';
import { setTimeout as delay } from 'node:timers/promises';
import { TempoflowError } from '../../core/errors';
import { resolveParams } from '../../core/params';
import type { BackfillStatus, Reprocess } from '../../workflows/backfill';
import { getBackfillStatus, listBackfills, planBackfill, REPROCESS_CHOICES, startBackfill } from '../backfill';
import type { CliContext } from '../context';
import { CliExit } from '../context';
import { colorState, formatInstant, table } from '../render';
import { confOption, paramOption, parseParams } from './trigger';

interface StartFlags {
  from: string;
  to: string;
  maxActive: number;
  reprocess: Reprocess;
  dryRun?: boolean;
  wait: boolean;
  json?: boolean;
  param: string[];
  conf?: string;
}

export function register(program: Command, ctx: CliContext): void {
  const group = program
    .command('backfill')
    .description('run a DAG for each interval of its schedule in a date range (durable: survives the CLI exiting)');

  group
    .command('start', { isDefault: true })
    .description('start a backfill (the default: `tempoflow backfill <dag> --from ... --to ...`)')
    .argument('<dag>', 'DAG id (it needs a schedule: its intervals are the runs)')
    .requiredOption('--from <date>', 'first interval start, inclusive, e.g. 2018-11-01')
    .requiredOption('--to <date>', 'last interval start, inclusive, e.g. 2018-11-30')
    .option('--max-active <n>', 'runs at once', positiveInt, 4)
    .addOption(
      new Option(
        '--reprocess <which>',
        'intervals with an existing run: none = skip them, failed = rerun failed ones, completed = rerun all',
      )
        .choices(REPROCESS_CHOICES)
        .default('none'),
    )
    .option('--dry-run', 'list the runs it would start, and start nothing')
    .option('--no-wait', 'start it and return (follow with `tempoflow backfill show <id>`)')
    .option('--json', 'print one JSON document')
    .addOption(paramOption('a param for every run (repeatable)'))
    .addOption(confOption())
    .action(async (dagId: string, flags: StartFlags) => {
      const dag = ctx.getDag(dagId);
      const params = parseParams(flags);
      resolveParams(dag, params);
      if (flags.dryRun) {
        const planned = planBackfill(dag, flags.from, flags.to);
        if (flags.json) return ctx.json(planned);
        ctx.out(
          `${ctx.style.bold(String(planned.length))} runs of ${dag.id}, ${flags.maxActive} at a time (reprocess: ${flags.reprocess}):`,
        );
        ctx.out(
          table(
            ['run id', 'data interval'],
            planned.map((p) => [p.runId, `${p.dataInterval.start} → ${p.dataInterval.end}`]),
            ctx.style,
            { indent: 2 },
          ),
        );
        return;
      }
      const client = await ctx.client();
      const started = await startBackfill(client, dag, {
        from: flags.from,
        to: flags.to,
        maxActive: flags.maxActive,
        reprocess: flags.reprocess,
        params,
        taskQueue: ctx.globals.taskQueue,
      });
      if (!flags.wait) {
        if (flags.json) return ctx.json({ backfillId: started.backfillId, runs: started.planned.length });
        ctx.out(
          `${ctx.style.green('✔')} backfill ${ctx.style.bold(started.backfillId)}: ${started.planned.length} runs, ${flags.maxActive} at a time`,
        );
        ctx.out(ctx.style.dim(`  follow it: tempoflow backfill show ${started.backfillId}`));
        return;
      }
      if (!flags.json)
        ctx.err(
          `backfill ${started.backfillId}: ${started.planned.length} runs, ${flags.maxActive} at a time (Ctrl-C stops watching; the backfill goes on)`,
        );
      const final = await followBackfill(ctx, client, started.backfillId, !flags.json);
      if (flags.json) ctx.json(final);
      else printBackfill(ctx, final);
      if (final.runs.some((r) => r.state === 'failed')) throw new CliExit(1);
    });

  group
    .command('list')
    .description('list backfills')
    .option('-d, --dag <dag>', 'only backfills of this DAG')
    .option('--json', 'print JSON')
    .action(async (flags: { dag?: string; json?: boolean }) => {
      const found = await listBackfills(await ctx.client(), flags.dag);
      if (flags.json) return ctx.json(found);
      if (!found.length) return ctx.out(ctx.style.dim('no backfills'));
      ctx.out(
        table(
          ['backfill', 'dag', 'status', 'started', 'ended'],
          found.map((b) => [
            b.backfillId,
            b.dagId,
            colorState(b.status.toLowerCase(), ctx.style),
            formatInstant(b.startTime),
            formatInstant(b.closeTime),
          ]),
          ctx.style,
        ),
      );
    });

  group
    .command('show')
    .description("a backfill's runs and their states")
    .argument('<backfillId>')
    .option('--json', 'print JSON')
    .action(async (backfillId: string, flags: { json?: boolean }) => {
      const status = await withNotFound(backfillId, async () => getBackfillStatus(await ctx.client(), backfillId));
      if (flags.json) return ctx.json(status);
      printBackfill(ctx, status);
    });

  group
    .command('cancel')
    .description('cancel a backfill and the runs it started that are still running')
    .argument('<backfillId>')
    .action(async (backfillId: string) => {
      const client = await ctx.client();
      await withNotFound(backfillId, () => client.workflow.getHandle(backfillId).cancel());
      ctx.out(`${ctx.style.yellow('■')} cancellation requested for backfill ${ctx.style.bold(backfillId)}`);
    });
}

async function followBackfill(
  ctx: CliContext,
  client: Client,
  backfillId: string,
  showProgress: boolean,
): Promise<BackfillStatus> {
  let outcome: { status: BackfillStatus } | { error: unknown } | undefined;
  const settled = (client.workflow.getHandle(backfillId).result() as Promise<BackfillStatus>).then(
    (status) => (outcome = { status }),
    (error: unknown) => (outcome = { error }),
  );
  const bar =
    showProgress && ctx.stderr.isTTY
      ? new SingleBar({ stream: ctx.stderr, format: ' {bar} {value}/{total} runs done | {counts}', hideCursor: true })
      : undefined;
  let lastDone = -1;
  try {
    for (;;) {
      const status =
        outcome && 'status' in outcome
          ? outcome.status
          : await getBackfillStatus(client, backfillId).catch(() => undefined);
      if (status) {
        const done = status.runs.filter((r) => r.state !== 'pending' && r.state !== 'running').length;
        const counts = countStates(status);
        if (bar && lastDone < 0) bar.start(status.runs.length, done, { counts });
        else if (bar) bar.update(done, { counts });
        else if (showProgress && done !== lastDone) ctx.err(`  ${done}/${status.runs.length} runs done (${counts})`);
        lastDone = done;
      }
      if (outcome) break;
      await Promise.race([settled, delay(1000)]);
    }
  } finally {
    bar?.stop();
  }
  if ('error' in outcome) {
    throw new TempoflowError(`backfill ${backfillId} did not complete: ${(outcome.error as Error).message}`, {
      cause: outcome.error,
    });
  }
  return outcome.status;
}

function countStates(status: BackfillStatus): string {
  const counts = new Map<string, number>();
  for (const run of status.runs) counts.set(run.state, (counts.get(run.state) ?? 0) + 1);
  return [...counts].map(([state, n]) => `${state} ${n}`).join(', ');
}

function printBackfill(ctx: CliContext, status: BackfillStatus): void {
  const s = ctx.style;
  ctx.out(
    `${s.bold('backfill')} of ${status.dagId}: ${colorState(status.state === 'completed' ? 'success' : status.state, s, status.state)} · ${countStates(status)} · at most ${status.maxActive} at once (peak ${status.peakActive})`,
  );
  ctx.out(
    table(
      // The data interval first: what a run processes (its logical date, in its id, is the interval's end).
      ['data interval', 'state', 'run', 'note'],
      status.runs.map((r) => [
        `${formatInstant(r.dataInterval.start)} → ${formatInstant(r.dataInterval.end)}`,
        colorState(r.state, s),
        r.runId,
        r.note ?? '',
      ]),
      s,
      { indent: 2 },
    ),
  );
}

async function withNotFound<T>(id: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof WorkflowNotFoundError)
      throw new TempoflowError(`no backfill '${id}' (see \`tempoflow backfill list\`)`, { cause: err });
    throw err;
  }
}

function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('must be a positive whole number');
  return n;
}
