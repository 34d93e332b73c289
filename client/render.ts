/** Plain-text rendering for the CLI: colours (only on terminals), tables, durations, task progress. */
import Table from 'cli-table3';
import type { DagRunStatus, RunSummary, TaskState, TaskStatus } from '../core/types';

// ---------------------------------------------------------------------------------------------------------------
// Colours

export interface Style {
  enabled: boolean;
  bold(s: string): string;
  dim(s: string): string;
  red(s: string): string;
  green(s: string): string;
  yellow(s: string): string;
  blue(s: string): string;
  cyan(s: string): string;
  magenta(s: string): string;
}

/** Colours for a stream: on for terminals, off when piped, with NO_COLOR or TERM=dumb; FORCE_COLOR forces them. */
export function styleFor(stream: NodeJS.WriteStream, env: NodeJS.ProcessEnv = process.env): Style {
  const forced = env.FORCE_COLOR !== undefined && env.FORCE_COLOR !== '0' && env.FORCE_COLOR !== 'false';
  const enabled = forced || (Boolean(stream.isTTY) && env.NO_COLOR === undefined && env.TERM !== 'dumb');
  const wrap = (open: number, close: number) => (s: string) => (enabled && s ? `\x1b[${open}m${s}\x1b[${close}m` : s);
  return {
    enabled,
    bold: wrap(1, 22),
    dim: wrap(2, 22),
    red: wrap(31, 39),
    green: wrap(32, 39),
    yellow: wrap(33, 39),
    blue: wrap(34, 39),
    magenta: wrap(35, 39),
    cyan: wrap(36, 39),
  };
}

// eslint-disable-next-line no-control-regex -- matching terminal escape sequences is the point
const ANSI = /\x1b\[[0-9;]*[A-Za-z]/g;
export const stripAnsi = (s: string): string => s.replace(ANSI, '');

// ---------------------------------------------------------------------------------------------------------------
// Tables

/** A borderless table with a dim header underline: compact and easy to read or grep. */
export function table(head: string[], rows: string[][], style: Style, options: { indent?: number } = {}): string {
  const t = new Table({
    head: head.map((h) => style.bold(h)),
    chars: {
      top: '',
      'top-mid': '',
      'top-left': '',
      'top-right': '',
      bottom: '',
      'bottom-mid': '',
      'bottom-left': '',
      'bottom-right': '',
      left: ' '.repeat(options.indent ?? 0),
      'left-mid': '',
      mid: '',
      'mid-mid': '',
      right: '',
      'right-mid': '',
      middle: '  ',
    },
    style: { head: [], border: [], 'padding-left': 0, 'padding-right': 0, compact: true },
  });
  t.push(...rows);
  const lines = t
    .toString()
    .split('\n')
    .map((l) => l.trimEnd());
  // Underline the header, as wide as the table.
  const width = Math.max(...lines.map((l) => stripAnsi(l).trimEnd().length));
  lines.splice(
    1,
    0,
    ' '.repeat(options.indent ?? 0) + style.dim('─'.repeat(Math.max(0, width - (options.indent ?? 0)))),
  );
  return lines.join('\n');
}

// ---------------------------------------------------------------------------------------------------------------
// Values

export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return '';
  if (ms < 1000) return `${Math.round(ms)}ms`;
  const s = ms / 1000;
  // `2s`, not `2.0s`: the same function prints specs (`every 2s`), which are whole more often than not.
  if (s < 60) return `${s < 10 ? Number(s.toFixed(1)) : Math.round(s)}s`;
  const m = Math.floor(s / 60);
  const pair = (big: number, bigUnit: string, small: number, smallUnit: string) =>
    small ? `${big}${bigUnit}${String(small).padStart(2, '0')}${smallUnit}` : `${big}${bigUnit}`;
  if (m < 60) return pair(m, 'm', Math.floor(s % 60), 's');
  const h = Math.floor(m / 60);
  if (h < 24) return pair(h, 'h', m % 60, 'm');
  return pair(Math.floor(h / 24), 'd', h % 24, 'h');
}

export function formatMsDuration(ms: number | undefined): string {
  if (ms === undefined) return '';
  return formatDuration(ms);
}

/** Time between two ISO instants (to now when `end` is missing). */
export function between(start: string | undefined, end: string | undefined, now = Date.now()): string {
  if (!start) return '';
  return formatDuration((end ? Date.parse(end) : now) - Date.parse(start));
}

/** `2026-11-24 19:28:38Z`: an ISO instant, shorter (UTC, no milliseconds, midnight shown as a date). */
export function formatInstant(iso: string | undefined): string {
  if (!iso) return '';
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return iso;
  const text = date.toISOString();
  if (text.endsWith('T00:00:00.000Z')) return text.slice(0, 10);
  return `${text.slice(0, 10)} ${text.slice(11, 19)}Z`;
}

export function formatBytes(n: number): string {
  if (n < 1000) return `${n} B`;
  const units = ['kB', 'MB', 'GB', 'TB'];
  let value = n;
  let unit = 'B';
  for (const u of units) {
    if (value < 1000) break;
    value /= 1000;
    unit = u;
  }
  return `${value.toFixed(value < 10 ? 1 : 0)} ${unit}`;
}

/** Compact JSON, cut to `max` characters. */
export function shortJson(value: unknown, max = 80): string {
  const text = JSON.stringify(value) ?? String(value);
  return truncate(text, max);
}

export function truncate(text: string, max: number): string {
  const oneLine = text.replace(/\s+/g, ' ').trim();
  return oneLine.length > max ? `${oneLine.slice(0, Math.max(0, max - 1))}…` : oneLine;
}

// ---------------------------------------------------------------------------------------------------------------
// Task states

const STATE_ICONS: Record<TaskState, string> = {
  waiting: '·',
  scheduled: '○',
  running: '▶',
  up_for_retry: '↻',
  success: '✔',
  failed: '✘',
  upstream_failed: '✘',
  skipped: '»',
};

/** Paints `text` (default: the state itself) in the colour of a task or run state. */
export function colorState(state: string, style: Style, text = state): string {
  switch (state) {
    case 'success':
      return style.green(text);
    case 'failed':
    case 'upstream_failed':
    case 'terminated':
    case 'timed_out':
      return style.red(text);
    case 'running':
    case 'scheduled':
      return style.cyan(text);
    case 'up_for_retry':
    case 'cancelled':
    case 'canceled':
      return style.yellow(text);
    case 'queued':
      return style.blue(text);
    default:
      return style.dim(text);
  }
}

export function stateCell(state: TaskState, style: Style): string {
  return colorState(state, style, `${STATE_ICONS[state] ?? ' '} ${state}`);
}

const DONE_STATES: TaskState[] = ['success', 'failed', 'upstream_failed', 'skipped'];

/** `37/120` for a mapped task (finished instances of all), with failed and running instances when there are any. */
export function mappedProgress(task: TaskStatus, style: Style): string {
  if (!task.mapped) return '';
  const { total, states } = task.mapped;
  const done = DONE_STATES.reduce((n, s) => n + (states[s] ?? 0), 0);
  const extras: string[] = [];
  if (states.running) extras.push(`${states.running} running`);
  if (states.up_for_retry) extras.push(style.yellow(`${states.up_for_retry} retrying`));
  const failed = (states.failed ?? 0) + (states.upstream_failed ?? 0);
  if (failed) extras.push(style.red(`${failed} failed`));
  return `${done}/${total}${extras.length ? ` (${extras.join(', ')})` : ''}`;
}

/** Progress reported by an activity's heartbeat, such as `{ filesDone, filesTotal, bytesDone, bytesTotal }`. */
export function formatHeartbeat(details: unknown): string {
  if (details === undefined || details === null) return '';
  if (typeof details !== 'object' || Array.isArray(details)) return shortJson(details, 40);
  const d = details as Record<string, unknown>;
  const num = (k: string) => (typeof d[k] === 'number' ? d[k] : undefined);
  const parts: string[] = [];
  const filesDone = num('filesDone');
  const filesTotal = num('filesTotal');
  if (filesDone !== undefined)
    parts.push(filesTotal !== undefined ? `${filesDone}/${filesTotal} files` : `${filesDone} files`);
  const bytesDone = num('bytesDone');
  const bytesTotal = num('bytesTotal');
  if (bytesDone !== undefined) {
    parts.push(bytesTotal !== undefined ? formatBytePair(bytesDone, bytesTotal) : formatBytes(bytesDone));
  }
  const rowsDone = num('rowsDone') ?? num('rows');
  if (rowsDone !== undefined) parts.push(`${rowsDone.toLocaleString('en-US')} rows`);
  if (typeof d.message === 'string') parts.push(truncate(d.message, 40));
  return parts.length ? parts.join(', ') : shortJson(details, 40);
}

/** `3.1/9.8 MB`: both sizes in the unit of the larger. */
function formatBytePair(done: number, total: number): string {
  const [, unit] = formatBytes(total).split(' ');
  const factor = { B: 1, kB: 1e3, MB: 1e6, GB: 1e9, TB: 1e12 }[unit ?? 'B'] ?? 1;
  const fmt = (n: number) => (factor === 1 ? String(n) : (n / factor).toFixed(1));
  return `${fmt(done)}/${fmt(total)} ${unit ?? 'B'}`;
}

export interface TaskTableOptions {
  style: Style;
  /** Heartbeat progress by task id. */
  heartbeats?: Map<string, string>;
  now?: number;
  /** Width available for the error column. */
  errorWidth?: number;
  indent?: number;
}

/** What a scheduled task waits for (a pool's slots, a lock), or how a sensor is doing. */
export function waitingNote(t: TaskStatus): string {
  if (t.state === 'scheduled' && t.waitingFor) return `waiting for ${t.waitingFor}`;
  const s = t.sensor;
  if (!s) return '';
  const next = t.state === 'running' && s.nextCheckAt ? `, next ${formatInstant(s.nextCheckAt).slice(11)}` : '';
  const last = s.lastDetail ? `: ${truncate(s.lastDetail, 60)}` : '';
  return `sensor ${s.checks} check${s.checks === 1 ? '' : 's'}${next}${last}`;
}

/** The task table of a run: task, state, attempts, progress, start, duration, error. */
export function taskTable(status: DagRunStatus, options: TaskTableOptions): string {
  const { style } = options;
  const rows = status.tasks.map((t) => {
    const progress = [mappedProgress(t, style), options.heartbeats?.get(t.taskId) ?? '', waitingNote(t)]
      .filter(Boolean)
      .join(' · ');
    const errors = t.error ? `${t.error.type ? `${t.error.type}: ` : ''}${t.error.message}` : '';
    return [
      t.taskId,
      stateCell(t.state, style),
      t.attempts ? String(t.attempts) : '',
      progress,
      formatInstant(t.startedAt).slice(11) || '',
      t.startedAt ? between(t.startedAt, isRunningState(t.state) ? undefined : t.endedAt, options.now) : '',
      errors ? style.red(truncate(errors, options.errorWidth ?? 60)) : '',
    ];
  });
  return table(['task', 'state', 'tries', 'progress', 'started', 'duration', 'error'], rows, style, {
    indent: options.indent ?? 0,
  });
}

function isRunningState(state: TaskState): boolean {
  return state === 'running' || state === 'scheduled' || state === 'up_for_retry';
}

/** `3 success · 1 running · 3 waiting` */
export function stateCounts(status: DagRunStatus, style: Style): string {
  const counts = new Map<TaskState, number>();
  for (const t of status.tasks) counts.set(t.state, (counts.get(t.state) ?? 0) + 1);
  return [...counts].map(([state, n]) => `${n} ${colorState(state, style)}`).join(style.dim(' · '));
}

// ---------------------------------------------------------------------------------------------------------------
// A run's summary

/** A run's summary as text: the headline, then each section's rows, in full (values wrap, never cut). */
export function renderSummary(summary: RunSummary, style: Style): string {
  const mark =
    summary.verdict === 'ok'
      ? style.green('✔')
      : summary.verdict === 'warning'
        ? style.yellow('!')
        : summary.verdict === 'problem'
          ? style.red('✘')
          : '•';
  const lines = [`${mark} ${style.bold(summary.headline)}`];
  for (const section of summary.sections) {
    lines.push(`  ${style.bold(section.title)}`);
    const width = Math.max(0, ...section.rows.map((r) => r.label.length));
    for (const { label, value } of section.rows) {
      const [first = '', ...rest] = value.split('\n');
      lines.push(`    ${style.dim(label.padEnd(width))}  ${first}`);
      for (const more of rest) lines.push(`    ${' '.repeat(width)}  ${more}`);
    }
  }
  return lines.join('\n');
}
