/** `tempoflow runs list|show|cancel`: find runs, see their tasks, cancel them. */
import { WorkflowNotFoundError } from '@temporalio/client';
import type { Client } from '@temporalio/client';
import { InvalidArgumentError, Option } from 'commander';
import type { Command } from 'commander';
import { TempoflowError, UnknownDagError } from '../../core/errors';
import { ProjectError } from '../../core/project';
import { summarizeRun } from '../../core/summary';
import { DAG_RUN_STATES } from '../../core/types';
import type { DagRunState, DagRunStatus, RunSummary } from '../../core/types';
import type { dagRun } from '../../workflows';
import { CliExit } from '../context';
import type { CliContext } from '../context';
import { between, colorState, formatInstant, renderSummary, stateCounts, table, taskTable } from '../render';
import { GRAPH_FORMATS, renderGraph } from '../graph';
import type { GraphFormat } from '../graph';
import { getRunInput, getRunStatus, listRuns, retryRun, waitForRun } from '../runs';
import { readLiveRun } from '../watch';
import { registerRunLogs } from './run-logs';
import { formatParams } from './trigger';

export function register(program: Command, ctx: CliContext): void {
  const group = program.command('runs').description('list, inspect and cancel DAG runs');

  group
    .command('list')
    .description('list runs, newest first')
    .option('-d, --dag <dag>', 'only runs of this DAG')
    .addOption(new Option('-s, --state <state>', 'only runs in this state').choices(DAG_RUN_STATES))
    .option('-n, --limit <n>', 'at most this many runs', positiveInt, 20)
    .option('--json', 'print the runs as JSON')
    .action(async (opts: { dag?: string; state?: DagRunState; limit: number; json?: boolean }) => {
      const client = await ctx.client();
      const runs = await listRuns(client, { dagId: opts.dag, state: opts.state, limit: opts.limit });
      if (opts.json) return ctx.json(runs);
      if (!runs.length) {
        const filters = [opts.dag && `DAG '${opts.dag}'`, opts.state && `state '${opts.state}'`]
          .filter(Boolean)
          .join(', ');
        ctx.out(ctx.style.dim(`no runs${filters ? ` for ${filters}` : ''} in namespace '${ctx.globals.namespace}'`));
        return;
      }
      const rows = runs.map((r) => [
        r.runId,
        r.dagId,
        colorState(r.state || r.workflowStatus.toLowerCase(), ctx.style),
        formatInstant(r.logicalDate),
        formatInstant(r.startTime),
        between(r.startTime, r.closeTime ?? undefined),
      ]);
      ctx.out(table(['run id', 'dag', 'state', 'logical date', 'started', 'duration'], rows, ctx.style));
    });

  group
    .command('show')
    .description("show a run: its DAG, state, dates, params and every task's state")
    .argument('<runId>', 'run id (see `tempoflow runs list`)')
    .option('--json', 'print the run status as JSON')
    .addOption(
      new Option('--format <format>', 'text, or the DAG with task states as Mermaid or Graphviz DOT')
        .choices(['text', ...GRAPH_FORMATS])
        .default('text'),
    )
    .action(async (runId: string, opts: { json?: boolean; format: 'text' | GraphFormat }) => {
      const client = await ctx.client();
      const { status, heartbeats } = await readRun(ctx, client, runId);
      // The graph of what the run ran: its own snapshot, whatever the project's DAG is now.
      if (opts.format !== 'text')
        return ctx.out(renderGraph(opts.format, (await getRunInput(client, runId)).dag, status));
      const summary = summaryOf(ctx, status);
      if (opts.json) return ctx.json(summary ? { ...status, summary } : status);
      printRun(ctx, status, heartbeats, summary);
    });

  group
    .command('cancel')
    .description('cancel a running run: running tasks are cancelled, waiting ones skipped')
    .argument('<runId>', 'run id (see `tempoflow runs list --state running`)')
    .action(async (runId: string) => {
      const client = await ctx.client();
      const handle = client.workflow.getHandle<typeof dagRun>(runId);
      const description = await notFoundAsUserError(ctx, runId, () => handle.describe());
      if (description.status.name !== 'RUNNING') {
        throw new TempoflowError(
          `run '${runId}' is not running (${description.status.name.toLowerCase()}): nothing to cancel`,
        );
      }
      await handle.cancel();
      ctx.out(`${ctx.style.yellow('■')} cancellation requested for run ${ctx.style.bold(runId)}`);
      ctx.out(ctx.style.dim(`  see it end: tempoflow runs show '${runId}'`));
    });

  group
    .command('retry')
    .description('run the failed (or named) tasks again with everything downstream, reusing the outputs of the rest')
    .argument('<runId>', 'a finished run (see `tempoflow runs list --state failed`)')
    .option(
      '-t, --task <id>',
      'retry this task (repeatable) instead of the failed ones',
      (v: string, prev: string[]) => [...prev, v],
      [],
    )
    .option('-w, --wait', 'follow the run until it ends; exit 1 if it fails')
    .action(async (runId: string, opts: { task: string[]; wait?: boolean }) => {
      const client = await ctx.client();
      const { taskQueue } = ctx.globals;
      const retried = await notFoundAsUserError(ctx, runId, () =>
        retryRun(client, runId, { taskQueue, ...(opts.task.length ? { tasks: opts.task } : {}) }),
      );
      ctx.out(`${ctx.style.green('↻')} run ${ctx.style.bold(runId)} again: ${retried.rerun.join(', ')}`);
      ctx.out(ctx.style.dim(`  reused: ${Object.keys(retried.input.reuse ?? {}).join(', ') || 'nothing'}`));
      const url = ctx.runUrl(runId);
      if (url) ctx.out(ctx.style.dim(`  ${url}`));
      if (!opts.wait) return;
      const final = await waitForRun(retried.handle);
      printRun(ctx, final, new Map(), summaryOf(ctx, final));
      if (final.state !== 'success') throw new CliExit(1);
    });

  registerRunLogs(group, ctx);
}

function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('must be a positive whole number');
  return n;
}

async function notFoundAsUserError<T>(ctx: CliContext, runId: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) {
      throw new TempoflowError(
        `no run '${runId}' in namespace '${ctx.globals.namespace}' (see \`tempoflow runs list\`)`,
        { cause: err },
      );
    }
    throw err;
  }
}

/** A run's status: final from the result when finished, else live from the runner (needs a worker). */
async function readRun(
  ctx: CliContext,
  client: Client,
  runId: string,
): Promise<{ status: DagRunStatus; heartbeats: Map<string, string> }> {
  const handle = client.workflow.getHandle<typeof dagRun>(runId);
  const description = await notFoundAsUserError(ctx, runId, () => handle.describe());
  if (description.status.name === 'RUNNING') {
    const live = await readLiveRun(client, handle, 5000);
    if (!live.status) {
      throw new TempoflowError(
        `run '${runId}' is running but no worker answered for its status (${live.problem ?? 'no answer'}): is a worker polling task queue '${description.taskQueue}'?`,
      );
    }
    return { status: live.status, heartbeats: live.heartbeats };
  }
  try {
    return {
      status: await client.withDeadline(Date.now() + 10_000, () => getRunStatus(client, runId)),
      heartbeats: new Map(),
    };
  } catch (err) {
    throw new TempoflowError(
      `run '${runId}' ended (${description.status.name.toLowerCase()}) without a task status to show: ${(err as Error).message}`,
      { cause: err },
    );
  }
}

/** The run's summary from its DAG's hook, when a project here defines the DAG (a run of a removed DAG has none). */
function summaryOf(ctx: CliContext, status: DagRunStatus): RunSummary | undefined {
  try {
    return summarizeRun(ctx.getDag(status.dagId), status);
  } catch (err) {
    if (err instanceof UnknownDagError || err instanceof ProjectError) return undefined;
    throw err;
  }
}

/** A run's dates, params and task table, then its DAG's summary (rows, rejects, …) when there is one. */
export function printRun(
  ctx: CliContext,
  status: DagRunStatus,
  heartbeats: Map<string, string>,
  summary?: RunSummary,
): void {
  const s = ctx.style;
  const rows: [string, string][] = [
    ['dag', s.bold(status.dagId)],
    ['state', `${colorState(status.state, s)}  ${s.dim(stateCounts(status, s))}`],
    ['logical date', status.logicalDate],
    [
      'data interval',
      status.dataInterval ? `${status.dataInterval.start} → ${status.dataInterval.end}` : s.dim('none'),
    ],
    ['params', formatParams(status.params) || s.dim('(none)')],
    [
      'started',
      `${formatInstant(status.startedAt)}${status.endedAt ? `, ended ${formatInstant(status.endedAt)}` : ''} (${between(status.startedAt, status.endedAt)})`,
    ],
  ];
  const url = ctx.runUrl(status.runId);
  if (url) rows.push(['Web UI', url]);
  if (status.alerts) {
    const { sent, slaMissedAt, errors } = status.alerts;
    const failed = errors.map((e) => `${e.callback} (${e.event}${e.taskId ? ` ${e.taskId}` : ''}): ${e.message}`);
    rows.push([
      'alerts',
      [
        `${sent} sent`,
        slaMissedAt && s.yellow(`SLA missed at ${formatInstant(slaMissedAt)}`),
        ...failed.map((f) => s.red(f)),
      ]
        .filter(Boolean)
        .join(' · '),
    ]);
  }
  ctx.out(`${s.bold('run')} ${status.runId}`);
  for (const [k, v] of rows) ctx.out(`  ${s.dim(k.padEnd(14))} ${v}`);
  ctx.out();
  ctx.out(taskTable(status, { style: s, heartbeats, errorWidth: Math.max(40, (ctx.stdout.columns || 120) - 70) }));
  if (summary) {
    ctx.out();
    ctx.out(renderSummary(summary, s));
  }
}
