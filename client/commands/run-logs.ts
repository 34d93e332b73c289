/** `tempoflow runs logs <runId>`: a run's task logs from the workers' log location (worker/task-logs.ts). */
import { WorkflowNotFoundError } from '@temporalio/client';
import type { Client } from '@temporalio/client';
import { InvalidArgumentError } from 'commander';
import type { Command } from 'commander';
import { setTimeout as delay } from 'node:timers/promises';
import { TempoflowError } from '../../core/errors';
import { FINISHED_TASK_STATES } from '../../core/types';
import { LOG_LOCATION_ENV, LOG_LOCATION_FLAG, resolveLogLocation } from '../../worker/log-location';
import type { TaskLogEntry, TaskLogFilter } from '../../worker/task-logs';
import { statusQuery } from '../../workflows/definitions';
import type { CliContext } from '../context';
import type { Style } from '../render';
import { knownNames } from '../../core/suggest';

const FOLLOW_POLL_MS = 1_000;

interface LogsFlags {
  task?: string;
  attempt?: number;
  mapIndex?: number;
  follow?: boolean;
  logLocation?: string;
  json?: boolean;
}

export function registerRunLogs(group: Command, ctx: CliContext): void {
  group
    .command('logs')
    .description("show a run's task logs: tempoflow's lines (attempts, heartbeats, outcomes) and the tasks' own")
    .argument('<runId>', 'run id (see `tempoflow runs list`)')
    .option('-t, --task <id>', 'only this task')
    .option('--attempt <n>', 'only this attempt', wholeNumber(1))
    .option('--map-index <n>', 'only this instance of a mapped task', wholeNumber(0))
    .option('-f, --follow', 'keep showing new lines until the task (or the run) ends')
    .option(
      `${LOG_LOCATION_FLAG} <folder or s3://bucket/prefix>`,
      `where the workers keep task logs (env ${LOG_LOCATION_ENV})`,
    )
    .option('--json', 'print the lines as JSON')
    .action(async (runId: string, opts: LogsFlags) => {
      // As the worker resolves it: the flag, the environment, then the project's `worker.logLocation`.
      const location = resolveLogLocation(
        opts.logLocation,
        ctx.env,
        ctx.projectFile ? ctx.project().worker?.logLocation : undefined,
      );
      if (!location) {
        throw new TempoflowError(
          `no log location: give ${LOG_LOCATION_FLAG} or set ${LOG_LOCATION_ENV} to the one the workers use ` +
            "(or set the project's worker.logLocation)",
        );
      }
      const { TaskLogReader } = await import('../../worker/task-logs');
      const reader = new TaskLogReader(location, runId);
      const client = await ctx.client();
      const execution = await describe(client, runId);
      const filter: TaskLogFilter = {
        ...(opts.task !== undefined ? { taskId: opts.task } : {}),
        ...(opts.attempt !== undefined ? { attempt: opts.attempt } : {}),
        ...(opts.mapIndex !== undefined ? { mapIndex: opts.mapIndex } : {}),
        // A run executed again under its id (a rerun): only the current execution's attempts.
        ...(execution ? { since: execution.startTime.getTime() - 1000 } : {}),
      };
      if (opts.json && !opts.follow) return ctx.json(await reader.readNew(filter));
      const print = (entries: TaskLogEntry[]) => {
        for (const entry of entries) ctx.out(opts.json ? JSON.stringify(entry) : formatLine(entry, ctx.style));
      };
      const first = await reader.readNew(filter);
      print(first);
      if (!opts.follow) {
        if (!first.length) ctx.err(ctx.errStyle.dim(`no task log lines under ${reader.runLocation}`));
        return;
      }
      while (await stillGoing(client, runId, opts.task)) {
        await delay(FOLLOW_POLL_MS);
        print(await reader.readNew(filter));
      }
      // Lines are written before an attempt reports its end: what is there now is complete.
      print(await reader.readNew(filter));
    });
}

async function describe(client: Client, runId: string) {
  try {
    return await client.workflow.getHandle(runId).describe();
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) return undefined;
    throw err;
  }
}

/** True while the run runs and, with `taskId`, that task has not finished. */
async function stillGoing(client: Client, runId: string, taskId: string | undefined): Promise<boolean> {
  const handle = client.workflow.getHandle(runId);
  const description = await describe(client, runId);
  if (description?.status.name !== 'RUNNING') return false;
  if (taskId === undefined) return true;
  try {
    const status = await handle.query(statusQuery);
    const task = status.tasks.find((t) => t.taskId === taskId);
    if (!task) {
      const known = [...new Set(status.tasks.map((t) => t.taskId))];
      throw new TempoflowError(`run '${runId}' has no task '${taskId}'${knownNames(taskId, known)}`);
    }
    return !FINISHED_TASK_STATES.includes(task.state);
  } catch (err) {
    if (err instanceof TempoflowError) throw err;
    return true; // no worker answered this time: ask again
  }
}

export function formatLine(entry: TaskLogEntry, style: Style): string {
  const time = entry.t.slice(11, 23);
  const instance = `${entry.taskId}${entry.mapIndex !== undefined ? `[${entry.mapIndex}]` : ''}#${entry.attempt}`;
  const level =
    entry.level === 'ERROR'
      ? style.red(entry.level.padEnd(5))
      : entry.level === 'WARN'
        ? style.yellow(entry.level.padEnd(5))
        : style.dim(entry.level.padEnd(5));
  const text = entry.src === 'tempoflow' ? style.cyan(entry.msg) : entry.msg;
  const meta = entry.meta ? ` ${style.dim(JSON.stringify(entry.meta))}` : '';
  return `${style.dim(time)} ${level} ${style.bold(instance)} ${text}${meta}`;
}

function wholeNumber(min: number) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < min) throw new InvalidArgumentError(`must be a whole number ≥ ${min}`);
    return n;
  };
}
