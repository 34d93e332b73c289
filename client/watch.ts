/** Following a run while it executes: live task table on a terminal, one line per state change otherwise. */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Client, WorkflowHandle } from '@temporalio/client';
import { defaultPayloadConverter } from '@temporalio/common';
import type { Payload } from '@temporalio/common';
import type { DagRunStatus, TaskState } from '../core/types';
import type { dagRun } from '../workflows';
import { statusQuery } from '../workflows/definitions';
import { waitForRun } from './runs';
import {
  between,
  colorState,
  formatHeartbeat,
  mappedProgress,
  stateCounts,
  stripAnsi,
  taskTable,
  truncate,
} from './render';
import type { Style } from './render';

type RunHandle = WorkflowHandle<typeof dagRun>;

/** A run's live state: the runner's status (when a worker answered) and heartbeat progress by task id. */
export interface LiveRun {
  status?: DagRunStatus;
  /** Workflow execution status (RUNNING, COMPLETED, FAILED, ...). */
  workflowStatus?: string;
  heartbeats: Map<string, string>;
  /** Why the status could not be read (no worker yet, ...). */
  problem?: string;
}

/** Asks the run for its status and its pending activities' heartbeats, each bounded by `timeoutMs`. */
export async function readLiveRun(client: Client, handle: RunHandle, timeoutMs = 2000): Promise<LiveRun> {
  const live: LiveRun = { heartbeats: new Map() };
  const deadline = () => Date.now() + timeoutMs;
  const [description, status] = await Promise.allSettled([
    client.withDeadline(deadline(), () => handle.describe()),
    client.withDeadline(deadline(), () => handle.query(statusQuery)),
  ]);
  if (status.status === 'fulfilled') live.status = status.value;
  else live.problem = (status.reason as Error)?.message ?? String(status.reason);
  if (description.status === 'fulfilled') {
    live.workflowStatus = description.value.status.name;
    if (live.status) live.heartbeats = heartbeatsByTask(live.status, description.value.raw.pendingActivities ?? []);
  }
  return live;
}

interface PendingActivityLike {
  activityType?: { name?: string | null } | null;
  heartbeatDetails?: { payloads?: Payload[] | null } | null;
}

/**
 * Heartbeat progress of pending activities, by the task they belong to (the running task that runs that
 * activity). Several instances of a mapped task add up their counters.
 */
export function heartbeatsByTask(status: DagRunStatus, pending: readonly PendingActivityLike[]): Map<string, string> {
  const byTask = new Map<string, Record<string, unknown>[]>();
  for (const activity of pending) {
    const payload = activity.heartbeatDetails?.payloads?.[0];
    if (!payload) continue;
    let details: unknown;
    try {
      details = defaultPayloadConverter.fromPayload(payload);
    } catch {
      continue;
    }
    const name = activity.activityType?.name;
    const candidates = status.tasks.filter((t) => t.activity === name && ['running', 'up_for_retry'].includes(t.state));
    if (candidates.length !== 1) continue;
    const taskId = candidates[0]!.taskId;
    const list = byTask.get(taskId) ?? [];
    list.push(details as Record<string, unknown>);
    byTask.set(taskId, list);
  }
  const result = new Map<string, string>();
  for (const [taskId, list] of byTask) {
    if (list.length === 1) {
      result.set(taskId, formatHeartbeat(list[0]));
      continue;
    }
    const sum: Record<string, number> = {};
    for (const d of list) {
      if (typeof d !== 'object' || d === null) continue;
      for (const [k, v] of Object.entries(d)) if (typeof v === 'number') sum[k] = (sum[k] ?? 0) + v;
    }
    result.set(taskId, `${list.length} active: ${formatHeartbeat(sum)}`);
  }
  return result;
}

export type ProgressMode = 'live' | 'lines' | 'none';

export interface WatchOptions {
  stream: NodeJS.WriteStream;
  style: Style;
  mode: ProgressMode;
  intervalMs?: number;
  /** Named in the hint shown while no worker answers. */
  taskQueue: string;
  /** On Ctrl-C, stop following and exit 130, leaving the run going (for runs on a remote worker). */
  detachOnInterrupt?: boolean;
}

/**
 * Follows a run to its end, showing progress, and returns its final status. Polls the runner's status query
 * (about twice a second) and the pending activities' heartbeats.
 */
export async function watchRun(client: Client, handle: RunHandle, options: WatchOptions): Promise<DagRunStatus> {
  const interval = options.intervalMs ?? 500;
  let settled = false;
  const result = waitForRun(handle).finally(() => {
    settled = true;
  });
  result.catch(() => undefined); // observed below
  const view =
    options.mode === 'live' ? new LiveView(options) : options.mode === 'lines' ? new LineView(options) : undefined;
  const startedWaiting = Date.now();
  // Ctrl-C stops following, not the run (unless the caller owns the worker and handles it).
  const onInterrupt = () => {
    view?.finish();
    options.stream.write(
      `\nstopped following; the run goes on. Follow it again: tempoflow runs show '${handle.workflowId}'\n`,
    );
    process.exit(130);
  };
  if (options.detachOnInterrupt) process.once('SIGINT', onInterrupt);
  try {
    while (!settled && view) {
      const live = await readLiveRun(client, handle, Math.max(1000, interval * 4));
      if (settled) break;
      view.update(live, Date.now() - startedWaiting);
      await Promise.race([result.catch(() => undefined), sleep(interval)]);
    }
    const final = await result;
    view?.finish(final);
    return final;
  } catch (err) {
    view?.finish();
    throw err;
  } finally {
    process.removeListener('SIGINT', onInterrupt);
  }
}

/** Redraws a compact task table in place. */
class LiveView {
  private lines = 0;
  private finished = false;
  private readonly hideCursor: () => void;

  constructor(private readonly options: WatchOptions) {
    this.hideCursor = () => this.options.stream.write('\x1b[?25h');
    this.options.stream.write('\x1b[?25l');
    process.once('exit', this.hideCursor);
  }

  update(live: LiveRun, waitedMs: number): void {
    const { style } = this.options;
    const text: string[] = [];
    if (!live.status) {
      const hint =
        waitedMs > 3000
          ? ` (is a worker running? start one with \`tempoflow worker --task-queue ${this.options.taskQueue}\`)`
          : '';
      text.push(style.dim(`waiting for a worker to start the run…${hint}`));
    } else {
      const s = live.status;
      text.push(
        `${style.bold(s.dagId)} ${style.dim('·')} ${colorState(s.state, style)} ${style.dim('·')} ${between(s.startedAt, s.endedAt)} ${style.dim('·')} ${stateCounts(s, style)}`,
      );
      text.push(
        ...taskTable(s, { style, heartbeats: live.heartbeats, errorWidth: this.errorWidth(), indent: 2 }).split('\n'),
      );
    }
    this.draw(text);
  }

  finish(_final?: DagRunStatus): void {
    if (this.finished) return;
    this.finished = true;
    this.draw([]);
    this.hideCursor();
    process.removeListener('exit', this.hideCursor);
  }

  private errorWidth(): number {
    return Math.max(20, (this.options.stream.columns || 100) - 80);
  }

  private draw(text: string[]): void {
    const columns = this.options.stream.columns || 100;
    const fitted = text.map((line) =>
      stripAnsi(line).length >= columns ? truncate(stripAnsi(line), columns - 1) : line,
    );
    const clear = this.lines ? `\x1b[${this.lines}F\x1b[0J` : '';
    this.options.stream.write(clear + fitted.map((l) => `${l}\n`).join(''));
    this.lines = fitted.length;
  }
}

/** Prints one line per task state change (for logs and pipes). */
class LineView {
  private readonly states = new Map<string, string>();
  private warnedNoWorker = false;

  constructor(private readonly options: WatchOptions) {}

  update(live: LiveRun, waitedMs: number): void {
    const { style, stream } = this.options;
    if (!live.status) {
      if (waitedMs > 3000 && !this.warnedNoWorker) {
        this.warnedNoWorker = true;
        stream.write(
          `${timestamp()}  waiting for a worker on task queue '${this.options.taskQueue}' (start one with \`tempoflow worker\`)\n`,
        );
      }
      return;
    }
    const width = Math.max(...live.status.tasks.map((t) => t.taskId.length));
    for (const task of live.status.tasks) {
      const key = `${task.state}/${task.attempts}`;
      if (this.states.get(task.taskId) === key) continue;
      const first = !this.states.has(task.taskId);
      this.states.set(task.taskId, key);
      if (first && task.state === 'waiting') continue;
      stream.write(
        `${lineFor(task.taskId.padEnd(width), task.state, style, [
          task.attempts > 1 ? `attempt ${task.attempts}` : '',
          mappedProgress(task, style),
          live.heartbeats.get(task.taskId) ?? '',
          task.error && ['failed', 'up_for_retry'].includes(task.state)
            ? style.red(truncate(task.error.message, 100))
            : '',
        ])}\n`,
      );
    }
  }

  finish(final?: DagRunStatus): void {
    if (!final) return;
    // The last changes may have happened between two polls.
    this.update({ status: final, heartbeats: new Map() }, 0);
  }
}

function lineFor(task: string, state: TaskState, style: Style, extras: string[]): string {
  const rest = extras.filter(Boolean).join(style.dim(' · '));
  return `${timestamp()}  ${task}  ${colorState(state, style)}${rest ? `  ${rest}` : ''}`;
}

function timestamp(): string {
  return new Date().toISOString().slice(11, 19);
}
