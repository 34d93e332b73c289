/** `tempoflow trigger <dag>`: start a DAG run (optionally wait for it, or run it on a throwaway local server). */
import { WorkflowFailedError } from '@temporalio/client';
import type { Client } from '@temporalio/client';
import { Option } from 'commander';
import type { Command } from 'commander';
import { resolveParams } from '../../core/params';
import { summarizeRun } from '../../core/summary';
import type { DagRunStatus, DagSnapshot, DataInterval, Json } from '../../core/types';
import { CliExit, UsageError } from '../context';
import type { CliContext } from '../context';
import { formatInstant, between, renderSummary, stateCounts, taskTable, truncate } from '../render';
import { normalizeInstant, triggerDagRun, uniqueRunSuffix } from '../runs';
import type { TriggeredRun } from '../runs';
import { watchRun } from '../watch';
import type { ProgressMode } from '../watch';

interface TriggerFlags {
  param: string[];
  conf?: string;
  logicalDate?: string;
  from?: string;
  to?: string;
  wait?: boolean;
  local?: boolean;
  json?: boolean;
}

export function register(program: Command, ctx: CliContext): void {
  program
    .command('trigger')
    .description('start a DAG run')
    .argument('<dag>', 'DAG id (see `tempoflow dags list`)')
    .addOption(paramOption('set a param (repeatable); see `tempoflow dags show <dag>`'))
    .addOption(confOption())
    .option('--logical-date <date>', 'the instant the run is for (default: --to, else now), e.g. 2018-11-01')
    .option('--from <date>', 'data interval start (inclusive), e.g. 2018-11-01')
    .option('--to <date>', 'data interval end (exclusive), e.g. 2018-11-02')
    .option('-w, --wait', 'follow the run until it ends; exit 1 if it fails')
    .addOption(new Option('--local', 'run on a throwaway local Temporal server with an in-process worker, then exit'))
    .option('--json', 'print one JSON document: the final run status (with --wait/--local), else the started run')
    .addHelpText(
      'after',
      `
Examples:
  $ tempoflow trigger hello --local
  $ tempoflow trigger hello -p name=Ada --wait
  $ tempoflow trigger my_dag --from 2018-11-01 --to 2018-11-02
  $ tempoflow trigger hello --wait --json | jq .state`,
    )
    .action(async (dagId: string, flags: TriggerFlags) => {
      // Everything the user typed is checked before any server or run starts.
      const dag = ctx.getDag(dagId);
      const given = parseParams(flags);
      resolveParams(dag, given);
      const dataInterval = parseInterval(flags);
      const logicalDate = flags.logicalDate ? normalizeInstant(flags.logicalDate, 'logicalDate') : undefined;

      if (flags.local) return runLocal(ctx, dag, given, dataInterval, logicalDate, flags);

      const client = await ctx.client();
      const { taskQueue } = ctx.globals;
      const run = await triggerDagRun(client, dag, {
        params: given,
        taskQueue,
        dataInterval,
        ...(logicalDate ? { logicalDate } : {}),
      });
      if (!flags.wait) {
        if (flags.json) return ctx.json(startedJson(ctx, run));
        printStarted(ctx, run);
        await warnIfNoWorker(ctx, client, taskQueue);
        return;
      }
      if (!flags.json) printStarted(ctx, run, { brief: true });
      if (!flags.json) await warnIfNoWorker(ctx, client, taskQueue);
      const final = await follow(ctx, client, run, flags, taskQueue);
      finish(ctx, dag, final, flags);
    });
}

/** `-p key=value` (repeatable) and `-c '{json}'`: how every command that starts runs takes params. */
export function paramOption(description: string): Option {
  return new Option('-p, --param <key=value>', description)
    .argParser((value: string, previous: string[]) => [...previous, value])
    .default([]);
}

export function confOption(): Option {
  return new Option('-c, --conf <json>', 'params as a JSON object (merged under -p)');
}

/** `-p key=value` and `--conf '{...}'` into one object of given params (values still strings from -p). */
export function parseParams(flags: Pick<TriggerFlags, 'param' | 'conf'>): Record<string, unknown> {
  const given: Record<string, unknown> = {};
  if (flags.conf !== undefined) {
    let conf: unknown;
    try {
      conf = JSON.parse(flags.conf);
    } catch {
      throw new UsageError(`--conf must be a JSON object, e.g. '{"count": 5}'; got ${flags.conf}`);
    }
    if (typeof conf !== 'object' || conf === null || Array.isArray(conf)) {
      throw new UsageError(`--conf must be a JSON object, e.g. '{"count": 5}'; got ${flags.conf}`);
    }
    Object.assign(given, conf);
  }
  for (const pair of flags.param) {
    const eq = pair.indexOf('=');
    if (eq <= 0) throw new UsageError(`-p expects key=value, got '${pair}'`);
    given[pair.slice(0, eq).trim()] = pair.slice(eq + 1);
  }
  return given;
}

function parseInterval(flags: Pick<TriggerFlags, 'from' | 'to'>): DataInterval | null {
  if (flags.from === undefined && flags.to === undefined) return null;
  if (flags.from === undefined || flags.to === undefined) {
    throw new UsageError('--from and --to go together: give both (the data interval [from, to)) or neither');
  }
  const start = normalizeInstant(flags.from, 'from');
  const end = normalizeInstant(flags.to, 'to');
  if (!(start < end)) throw new UsageError(`--from (${flags.from}) must be before --to (${flags.to})`);
  return { start, end };
}

function startedJson(ctx: CliContext, run: TriggeredRun) {
  return {
    runId: run.runId,
    dagId: run.input.dag.id,
    created: run.created,
    logicalDate: run.input.logicalDate,
    dataInterval: run.input.dataInterval,
    params: run.input.params,
    ...('firstExecutionRunId' in run.handle && typeof run.handle.firstExecutionRunId === 'string'
      ? { temporalRunId: run.handle.firstExecutionRunId }
      : {}),
    url: ctx.runUrl(run.runId) ?? null,
  };
}

function printStarted(ctx: CliContext, run: TriggeredRun, options: { brief?: boolean; showUrl?: boolean } = {}): void {
  const s = ctx.style;
  const { input } = run;
  if (run.created) ctx.out(`${s.green('✔')} Triggered ${s.bold(input.dag.id)}`);
  else
    ctx.out(
      `${s.yellow('•')} A run of ${s.bold(input.dag.id)} for logical date ${input.logicalDate} already exists: showing it`,
    );
  const rows: [string, string][] = [['run id', run.runId]];
  if (!options.brief) {
    rows.push(['logical date', input.logicalDate]);
    if (input.dataInterval) rows.push(['data interval', `${input.dataInterval.start} → ${input.dataInterval.end}`]);
    rows.push(['params', formatParams(input.params) || s.dim('(none)')]);
  }
  const url = options.showUrl === false ? undefined : ctx.runUrl(run.runId);
  if (url) rows.push(['Web UI', url]);
  for (const [k, v] of rows) ctx.out(`  ${s.dim(k.padEnd(14))} ${v}`);
  if (!options.brief) {
    ctx.out();
    ctx.out(s.dim(`Follow it: tempoflow runs show '${run.runId}'   (or trigger with --wait)`));
  }
}

export function formatParams(params: Record<string, Json>): string {
  return Object.entries(params)
    .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
    .join(' ');
}

/** Warns when no worker polls the task queue: the run would wait forever without one. */
async function warnIfNoWorker(ctx: CliContext, client: Client, taskQueue: string): Promise<void> {
  try {
    const response = await client.withDeadline(Date.now() + 2000, () =>
      client.workflowService.describeTaskQueue({
        namespace: ctx.globals.namespace,
        taskQueue: { name: taskQueue },
        taskQueueType: 1, // TASK_QUEUE_TYPE_WORKFLOW
      }),
    );
    if (!response.pollers?.length) {
      ctx.warn(
        `no worker is polling task queue '${taskQueue}' yet; the run starts when one does (\`tempoflow worker\`, or \`tempoflow dev\` for a local setup)`,
      );
    }
  } catch {
    // Only a hint: never fail the command over it.
  }
}

function progressMode(
  ctx: CliContext,
  flags: Pick<TriggerFlags, 'json'>,
): { mode: ProgressMode; stream: NodeJS.WriteStream } {
  // With --json, stdout carries only the document; progress goes to stderr.
  const stream = flags.json ? ctx.stderr : ctx.stdout;
  return { stream, mode: stream.isTTY ? 'live' : 'lines' };
}

async function follow(
  ctx: CliContext,
  client: Client,
  run: TriggeredRun,
  flags: Pick<TriggerFlags, 'json'>,
  taskQueue: string,
  local = false,
): Promise<DagRunStatus> {
  const { mode, stream } = progressMode(ctx, flags);
  try {
    return await watchRun(client, run.handle, {
      stream,
      style: stream === ctx.stdout ? ctx.style : ctx.errStyle,
      mode,
      taskQueue,
      detachOnInterrupt: !local,
    });
  } catch (err) {
    if (err instanceof WorkflowFailedError) {
      // Terminated or timed out outside the runner: there is no final task status to show.
      const why = err.cause?.message ? `: ${err.cause.message}` : '';
      throw new CliExit(
        1,
        `${ctx.errStyle.red('✘')} run ${run.runId} ended without finishing its tasks (${err.cause?.name ?? 'failed'}${why})`,
      );
    }
    throw err;
  }
}

/** Prints the final status (or the JSON document) and ends with exit code 1 when the run did not succeed. */
function finish(ctx: CliContext, dag: DagSnapshot, final: DagRunStatus, flags: Pick<TriggerFlags, 'json'>): void {
  if (flags.json) ctx.json({ ...final, summary: summarizeRun(dag, final) });
  else printFinal(ctx, dag, final);
  if (final.state !== 'success') throw new CliExit(1);
}

export function printFinal(ctx: CliContext, dag: DagSnapshot, final: DagRunStatus): void {
  const s = ctx.style;
  ctx.out();
  ctx.out(taskTable(final, { style: s, errorWidth: Math.max(40, (ctx.stdout.columns || 120) - 70) }));
  ctx.out();
  const took = between(final.startedAt, final.endedAt);
  if (final.state === 'success') {
    ctx.out(`${s.green('✔')} ${s.bold(final.dagId)} run succeeded in ${took} (${stateCounts(final, s)})`);
    ctx.out();
    ctx.out(renderSummary(summarizeRun(dag, final), s));
    return;
  }
  ctx.out(`${s.red('✘')} ${s.bold(final.dagId)} run ${final.state} after ${took} (${stateCounts(final, s)})`);
  for (const t of final.tasks.filter((t) => t.state === 'failed')) {
    ctx.out(
      `  ${s.red(t.taskId)}: ${t.error ? `${t.error.type ? `${t.error.type}: ` : ''}${t.error.message}` : 'failed'}`,
    );
    for (const e of t.mapped?.errors.slice(0, 5) ?? [])
      ctx.out(s.dim(`    [${e.mapIndex}] ${truncate(e.error.message, 160)}`));
    const more = (t.mapped?.errors.length ?? 0) - 5;
    if (more > 0) ctx.out(s.dim(`    … and ${more} more`));
  }
  ctx.out(s.dim(`logical date ${formatInstant(final.logicalDate)} · run id ${final.runId}`));
  ctx.out();
  ctx.out(renderSummary(summarizeRun(dag, final), s));
}

/** `--local`: a throwaway dev server and an in-process worker, the run followed to its end, everything stopped. */
async function runLocal(
  ctx: CliContext,
  dag: DagSnapshot,
  given: Record<string, unknown>,
  dataInterval: DataInterval | null,
  logicalDate: string | undefined,
  flags: TriggerFlags,
): Promise<void> {
  const log = flags.json ? () => undefined : (line: string) => ctx.err(ctx.errStyle.dim(line));
  const taskQueue = `local-${uniqueRunSuffix()}`;
  const { startLocalStack } = await import('../local');
  const stack = await startLocalStack(ctx, { taskQueue, log, ui: false });
  let final: DagRunStatus;
  try {
    final = await stack.runUntil(async () => {
      const run = await triggerDagRun(stack.client, dag, {
        params: given,
        taskQueue,
        dataInterval,
        ...(logicalDate ? { logicalDate } : {}),
      });
      if (!flags.json) printStarted(ctx, run, { brief: true, showUrl: false });
      return follow(ctx, stack.client, run, flags, taskQueue, true);
    });
  } catch (err) {
    // Ctrl-C: Temporal's Runtime stopped the worker before the run ended.
    if (isWorkerStoppedFirst(err))
      throw new CliExit(130, 'interrupted: stopped the local server (its runs are gone with it)');
    throw err;
  } finally {
    await stack.stop();
  }
  finish(ctx, dag, final, flags);
}

/** `worker.runUntil` reports this when the worker stopped (on a signal) before the promise settled. */
export function isWorkerStoppedFirst(err: unknown): boolean {
  return err instanceof Error && err.name === 'PromiseCompletionTimeoutError';
}
