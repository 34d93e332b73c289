/**
 * Task logs: every attempt of every task instance keeps its log lines — tempoflow's own (attempt started, progress
 * heartbeats, outcome, error) and those the activity writes with `log` from `@temporalio/activity` — in the
 * worker's log location (`--log-location`, `TEMPOFLOW_LOG_LOCATION`: a folder or `s3://bucket/prefix`), read back
 * with `tempoflow runs logs`.
 *
 * Layout, one folder per attempt, each holding numbered chunks of JSON lines (S3 cannot append, so every flush is a
 * new object; a local folder is written the same way through the same storage layer):
 *
 *   <location>/<runId>/<taskId>/<mapIndex or "-">/attempt-<NNN>/<writer>-<NNNNN>.jsonl
 *
 * `<writer>` starts with the attempt's start time in ms, so keys sort in time order and a run executed again under
 * the same id (a rerun) writes beside, not over, the lines of the earlier execution.
 *
 * Lines are buffered and flushed every `FLUSH_INTERVAL_MS`, when `FLUSH_BYTES` are buffered, and when the attempt
 * ends (before its result is reported), never one request per line. Values of the worker's secret environment
 * variables are masked in every line.
 */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { Context } from '@temporalio/activity';
import type { Logger, LogLevel, LogMetadata } from '@temporalio/common';
import { TempoflowError } from '../core/errors';
import type { TaskContext } from '../core/types';
// The generic storage layer (S3 or a folder); it holds no application code.
import { createStore } from '../storage/store';
import type { Store } from '../storage/store';
import { joinUri } from '../storage/uri';

const FLUSH_INTERVAL_MS = 2_000;
const FLUSH_BYTES = 256 * 1024;
/** Progress heartbeats are logged at most this often (activities may heartbeat many times a second). */
const HEARTBEAT_LOG_INTERVAL_MS = 5_000;

/** One log line as stored. */
export interface TaskLogLine {
  /** ISO 8601. */
  t: string;
  level: LogLevel;
  /** `tempoflow`: the framework's own line; `task`: the activity's. */
  src: 'tempoflow' | 'task';
  msg: string;
  meta?: LogMetadata;
}

/** A line read back, with the task instance and attempt it belongs to. */
export interface TaskLogEntry extends TaskLogLine {
  taskId: string;
  mapIndex?: number;
  attempt: number;
}

/** Masks the values of secret-looking environment variables (keys, tokens, passwords, webhook URLs). */
export function secretMasker(env: NodeJS.ProcessEnv = process.env): (text: string) => string {
  const secrets = Object.entries(env)
    .filter(([name, value]) => /SECRET|TOKEN|PASSWORD|API_KEY|WEBHOOK|ACCESS_KEY|CREDENTIAL/i.test(name) && value)
    .map(([, value]) => value!)
    .filter((value) => value.length >= 6)
    .sort((a, b) => b.length - a.length);
  return (text) => secrets.reduce((out, secret) => out.split(secret).join('***'), text);
}

function attemptPrefix(location: string, runId: string, taskId: string, mapIndex: number | undefined, attempt: number) {
  return joinUri(
    location,
    runId,
    taskId,
    mapIndex === undefined ? '-' : String(mapIndex),
    `attempt-${String(attempt).padStart(3, '0')}`,
  );
}

/** The lines of one attempt, buffered and written in numbered chunks. */
class AttemptLog {
  private buffer: string[] = [];
  private bytes = 0;
  private seq = 0;
  private writing: Promise<void> = Promise.resolve();
  private readonly timer: NodeJS.Timeout;
  private readonly writer = `${Date.now()}-${randomBytes(3).toString('hex')}`;
  private warned = false;

  constructor(
    private readonly store: Store,
    private readonly prefix: string,
    private readonly mask: (text: string) => string,
    private readonly warn: (message: string) => void,
  ) {
    this.timer = setInterval(() => void this.flush(), FLUSH_INTERVAL_MS);
    this.timer.unref();
  }

  add(level: LogLevel, src: TaskLogLine['src'], msg: string, meta?: LogMetadata): void {
    const line: TaskLogLine = { t: new Date().toISOString(), level, src, msg };
    if (meta && Object.keys(meta).length) line.meta = meta;
    let text: string;
    try {
      text = this.mask(JSON.stringify(line));
    } catch {
      text = this.mask(JSON.stringify({ ...line, meta: { unserializable: true } }));
    }
    this.buffer.push(text);
    this.bytes += text.length;
    if (this.bytes >= FLUSH_BYTES) void this.flush();
  }

  /** Writes what is buffered as the next chunk; a failed write is reported once and never fails the task. */
  flush(): Promise<void> {
    if (!this.buffer.length) return this.writing;
    const body = this.buffer.join('\n') + '\n';
    const key = `${this.writer}-${String(this.seq++).padStart(5, '0')}.jsonl`;
    this.buffer = [];
    this.bytes = 0;
    this.writing = this.writing.then(() =>
      this.store.write(joinUri(this.prefix, key), body).catch((err: unknown) => {
        if (this.warned) return;
        this.warned = true;
        this.warn(`task log lines not written to ${this.prefix}: ${(err as Error).message}`);
      }),
    );
    return this.writing;
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    await this.flush();
  }
}

/** A logger that writes to the attempt's log and on to the worker's own logger (which adds Temporal's attributes). */
function teeLogger(original: Logger, attemptLog: AttemptLog): Logger {
  const log = (level: LogLevel, message: string, meta?: LogMetadata) => {
    attemptLog.add(level, 'task', message, meta);
    original.log(level, message, meta);
  };
  return {
    log,
    trace: (message, meta) => log('TRACE', message, meta),
    debug: (message, meta) => log('DEBUG', message, meta),
    info: (message, meta) => log('INFO', message, meta),
    warn: (message, meta) => log('WARN', message, meta),
    error: (message, meta) => log('ERROR', message, meta),
  };
}

/** Keeps task logs in one location for the activities of one worker. */
export class TaskLogs {
  private readonly mask: (text: string) => string;
  constructor(
    readonly location: string,
    private readonly store: Store = createStore(),
    env: NodeJS.ProcessEnv = process.env,
  ) {
    this.mask = secretMasker(env);
  }

  /**
   * Writes and deletes a probe object, so a location the worker cannot write to (a missing bucket, wrong
   * credentials, no server) stops it at start, naming the location, instead of losing every task's lines later.
   */
  async checkWritable(): Promise<void> {
    const probe = joinUri(this.location, `.probe-${hostname()}-${process.pid}-${randomBytes(4).toString('hex')}`);
    try {
      await this.store.write(probe, '');
      await this.store.delete(probe);
    } catch (err) {
      throw new TempoflowError(`cannot write task logs to ${this.location}: ${(err as Error).message}`, {
        cause: err,
      });
    }
  }

  /**
   * Runs one attempt of a task activity with its lines captured: the activity's `log` (Temporal's activity logger,
   * swapped on this attempt's own Context for a tee, so the worker's logs still get every line) and its
   * heartbeats, plus tempoflow's lines for the start and the outcome. Lines are flushed before it returns.
   */
  async capture<T>(ctx: TaskContext, run: () => Promise<T>): Promise<T> {
    const context = Context.current();
    const original = context.log;
    const prefix = attemptPrefix(this.location, ctx.runId, ctx.taskId, ctx.mapIndex, ctx.attempt);
    const attemptLog = new AttemptLog(this.store, prefix, this.mask, (m) => {
      original.warn(m);
    });
    const mutable = context as { log: Logger; heartbeat: (details?: unknown) => void };
    const heartbeat = context.heartbeat;
    let lastBeatLogged = 0;
    mutable.log = teeLogger(original, attemptLog);
    mutable.heartbeat = (details?: unknown) => {
      const now = Date.now();
      if (now - lastBeatLogged >= HEARTBEAT_LOG_INTERVAL_MS) {
        lastBeatLogged = now;
        attemptLog.add('DEBUG', 'tempoflow', 'heartbeat', details === undefined ? undefined : { progress: details });
      }
      heartbeat(details);
    };
    const started = Date.now();
    const { info } = context;
    attemptLog.add('INFO', 'tempoflow', `attempt ${ctx.attempt} of task ${describeInstance(ctx)} started`, {
      activity: info.activityType,
      taskQueue: info.taskQueue,
    });
    try {
      const result = await run();
      attemptLog.add('INFO', 'tempoflow', `attempt ${ctx.attempt} succeeded in ${seconds(started)}`);
      return result;
    } catch (err) {
      const cancelled = context.cancellationSignal.aborted;
      const error = err instanceof Error ? err : new Error(String(err));
      const type = (error as { type?: unknown }).type;
      attemptLog.add(
        cancelled ? 'WARN' : 'ERROR',
        'tempoflow',
        cancelled
          ? `attempt ${ctx.attempt} cancelled after ${seconds(started)}`
          : `attempt ${ctx.attempt} failed after ${seconds(started)}: ${error.message}`,
        cancelled ? undefined : { type: typeof type === 'string' && type ? type : error.name },
      );
      throw err;
    } finally {
      mutable.log = original;
      mutable.heartbeat = heartbeat;
      await attemptLog.close();
    }
  }
}

function describeInstance(ctx: TaskContext): string {
  return ctx.mapIndex === undefined ? ctx.taskId : `${ctx.taskId} [${ctx.mapIndex}]`;
}

function seconds(since: number): string {
  return `${((Date.now() - since) / 1000).toFixed(1)}s`;
}

/** Which lines to read. */
export interface TaskLogFilter {
  taskId?: string;
  mapIndex?: number;
  attempt?: number;
  /** Only lines of attempts started at or after this time (ms): the current execution of a rerun run. */
  since?: number;
}

/** A chunk object of the layout, parsed from its key under `<location>/<runId>/`. */
interface Chunk {
  uri: string;
  key: string;
  taskId: string;
  mapIndex?: number;
  attempt: number;
  writerStart: number;
}

function parseChunkKey(uri: string, key: string): Chunk | undefined {
  const m = /^([^/]+)\/([^/]+)\/attempt-(\d+)\/(\d+)-[0-9a-f]+-\d+\.jsonl$/.exec(key);
  if (!m) return undefined;
  const chunk: Chunk = { uri, key, taskId: m[1]!, attempt: Number(m[3]), writerStart: Number(m[4]) };
  if (m[2] !== '-') chunk.mapIndex = Number(m[2]);
  return chunk;
}

/** Reads a run's task logs; `readNew` returns only chunks not read before (for `--follow`). */
export class TaskLogReader {
  private readonly seen = new Set<string>();
  constructor(
    readonly location: string,
    readonly runId: string,
    private readonly store: Store = createStore(),
  ) {}

  /** Where this run's logs are. */
  get runLocation(): string {
    return joinUri(this.location, this.runId);
  }

  /** Lines of chunks not read yet that match `filter`, in time order (attempt start, then line time). */
  async readNew(filter: TaskLogFilter = {}): Promise<TaskLogEntry[]> {
    const objects = await this.store.list(this.runLocation);
    const chunks = objects
      .map((o) => parseChunkKey(o.uri, o.key))
      .filter((c): c is Chunk => c !== undefined && !this.seen.has(c.key))
      .filter(
        (c) =>
          (filter.taskId === undefined || c.taskId === filter.taskId) &&
          (filter.mapIndex === undefined || c.mapIndex === filter.mapIndex) &&
          (filter.attempt === undefined || c.attempt === filter.attempt) &&
          (filter.since === undefined || c.writerStart >= filter.since),
      );
    const entries: TaskLogEntry[] = [];
    for (const chunk of chunks) {
      this.seen.add(chunk.key);
      const text = (await this.store.read(chunk.uri)).toString('utf8');
      for (const raw of text.split('\n')) {
        if (!raw.trim()) continue;
        const line = JSON.parse(raw) as TaskLogLine;
        entries.push({
          ...line,
          taskId: chunk.taskId,
          attempt: chunk.attempt,
          ...(chunk.mapIndex !== undefined ? { mapIndex: chunk.mapIndex } : {}),
        });
      }
    }
    // Stable: lines of one time keep their written order.
    return entries.sort((a, b) => a.t.localeCompare(b.t));
  }
}
