/**
 * The tempoflow glossary. Every public type lives here, so one file answers "what is a ...?".
 *
 * - **DAG**: a named graph of tasks with params and defaults, declared with `defineDag`. Once defined it is
 *   plain data (a `DagSnapshot`): the runner receives it whole, so each run records exactly what it ran.
 * - **Task**: one node of the DAG. It runs one **activity** (a function registered on a worker, by name).
 * - **Task instance**: one execution of a task in a run; a mapped task has one instance per item (`mapIndex`).
 * - **Run** (DAG run): one execution of a DAG, one Temporal workflow (the runner). Its id is the workflow id.
 * - **Logical date**: the instant a run is "for" (Airflow's logical date); for scheduled runs, the end of
 *   its data interval.
 * - **Data interval**: `[start, end)` of the data a run processes; `null` when the run covers everything.
 * - **Trigger rule**: when a task may start, given the states of its upstream tasks.
 * - **Mapping**: running a task once per item of an upstream task's list output (Airflow's `.expand`).
 * - **Branch task**: a task whose output names the downstream tasks to follow; the others are skipped.
 */

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** A duration as milliseconds or a string such as `'30s'`, `'5m'`, `'2h'`, `'1d'`. */
export type Duration = number | string;

export const TRIGGER_RULES = [
  'all_success',
  'all_done',
  'all_failed',
  'one_success',
  'one_failed',
  'none_failed',
  'none_failed_min_one_success',
  'always',
] as const;
export type TriggerRule = (typeof TRIGGER_RULES)[number];

/** `waiting`: not yet ready (its upstream tasks are not done). The others follow Airflow's task states. */
export const TASK_STATES = [
  'waiting',
  'scheduled',
  'running',
  'up_for_retry',
  'success',
  'failed',
  'upstream_failed',
  'skipped',
] as const;
export type TaskState = (typeof TASK_STATES)[number];
export const FINISHED_TASK_STATES: readonly TaskState[] = ['success', 'failed', 'upstream_failed', 'skipped'];

/**
 * A run's state, as its `DagRunState` search attribute records it: `queued` from its start until its runner
 * begins, then `running`, then the finished state the runner writes last. A run's status (`DagRunStatus`) says the
 * same.
 */
export const DAG_RUN_STATES = ['queued', 'running', 'success', 'failed', 'cancelled'] as const;
export type DagRunState = (typeof DAG_RUN_STATES)[number];
export const FINISHED_DAG_RUN_STATES: readonly DagRunState[] = ['success', 'failed', 'cancelled'];

/**
 * A run's state as listings, backfills and schedules see it (`runStateOf` in run-states.ts): its `DagRunState`, or
 * how it ended when it ended outside its runner's control and never recorded a finished state.
 */
export const RUN_STATES = [...DAG_RUN_STATES, 'terminated', 'timed_out'] as const;
export type RunState = (typeof RUN_STATES)[number];

// ---------------------------------------------------------------------------------------------------------------
// Declaring a DAG (what authors write)

export type ParamSpec =
  | { type: 'string'; default?: string; enum?: string[]; pattern?: string; description?: string; required?: boolean }
  | {
      type: 'integer' | 'number';
      default?: number;
      min?: number;
      max?: number;
      description?: string;
      required?: boolean;
    }
  | { type: 'boolean'; default?: boolean; description?: string; required?: boolean };

export interface TaskOptions {
  /** Retries after the first attempt (Airflow's `retries`). Default 0. */
  retries?: number;
  /** Delay before the first retry. Default `'1s'`. */
  retryDelay?: Duration;
  /** Each retry waits this many times longer than the previous one. Default 2. */
  retryBackoff?: number;
  /** Upper bound on the retry delay. Default `'5m'`. */
  maxRetryDelay?: Duration;
  /** Limit on one attempt's running time. Default `'1h'`. */
  executionTimeout?: Duration;
  /** The attempt fails when the activity has not heartbeaten for this long (set it for long tasks). */
  heartbeatTimeout?: Duration;
  /** Run this task's activity on another task queue (e.g. workers with more memory). */
  taskQueue?: string;
}

export interface MapSpec {
  /** The upstream task whose output (a JSON array, or an object with an array at `field`) is mapped over. */
  over: string;
  /** Property of the upstream output that holds the array; omit when the output is the array. */
  field?: string;
  /** Cap on instances of this task running at once. Default: the DAG's `maxActiveTasks`. */
  maxActive?: number;
}

export interface TaskDefinition extends TaskOptions {
  id: string;
  /** Name of the activity (registered on a worker) that this task runs. */
  activity: string;
  upstream?: string[];
  triggerRule?: TriggerRule;
  map?: MapSpec;
  /** The task's output is a task id or a list of task ids to follow; other direct downstream tasks are skipped. */
  branch?: boolean;
  /**
   * Instances of this task that share the value of this param run one at a time, across all runs (e.g.
   * `'output'`: publishing to one location is serialized while the rest of the runs go on in parallel).
   */
  exclusiveBy?: string;
  description?: string;
}

export interface ScheduleSpec {
  /** A cron expression (UTC), e.g. `'0 0 * * *'` for daily at midnight. */
  cron?: string;
  /** A fixed interval such as `'1d'` or `'1h'`. */
  every?: Duration;
}

export interface DagDefinition {
  id: string;
  description?: string;
  params?: Record<string, ParamSpec>;
  /** Task options applied to every task unless the task sets its own. */
  defaults?: TaskOptions;
  /** Cap on task instances of one run running at once. Default 32. */
  maxActiveTasks?: number;
  /** The DAG's natural schedule: gives backfill its intervals and schedules their default. */
  schedule?: ScheduleSpec;
  tasks: TaskDefinition[];
  /**
   * Checks across params that the per-param specs cannot express (e.g. two locations that must not overlap):
   * the problems found, each naming its params, or none. Run with defaults filled in before a run, schedule or
   * backfill starts (a `ParamValidationError` naming the DAG). Code, so not part of the snapshot: a run's tasks
   * check again what they rely on (runs a schedule starts, or older clients, skip this).
   */
  validateParams?: (params: Record<string, Json>) => string[];
}

// ---------------------------------------------------------------------------------------------------------------
// A defined DAG (plain data, what the runner receives)

export interface RetrySnapshot {
  maxAttempts: number;
  initialDelayMs: number;
  backoffCoefficient: number;
  maxDelayMs: number;
}

export interface TaskSnapshot {
  id: string;
  activity: string;
  description?: string;
  upstream: string[];
  triggerRule: TriggerRule;
  retry: RetrySnapshot;
  executionTimeoutMs: number;
  heartbeatTimeoutMs?: number;
  taskQueue?: string;
  map?: { over: string; field?: string; maxActive: number };
  branch: boolean;
  exclusiveBy?: string;
}

export interface DagSnapshot {
  id: string;
  description: string;
  params: Record<string, ParamSpec>;
  maxActiveTasks: number;
  schedule?: { cron?: string; everyMs?: number };
  /** Topologically ordered. */
  tasks: TaskSnapshot[];
}

// ---------------------------------------------------------------------------------------------------------------
// Running

export interface DataInterval {
  /** ISO 8601, inclusive. */
  start: string;
  /** ISO 8601, exclusive. */
  end: string;
}

/** The runner workflow's input. */
export interface DagRunInput {
  dag: DagSnapshot;
  params: Record<string, Json>;
  /** ISO 8601. */
  logicalDate: string;
  dataInterval: DataInterval | null;
  /** Outputs of tasks to reuse instead of running them again (`runs retry`). */
  reuse?: Record<string, Json>;
  /**
   * Set for runs started by a schedule: the logical date is the scheduled time, and the data interval runs
   * from the previous scheduled time to it (`logicalDate` and `dataInterval` above are then ignored).
   */
  fromSchedule?: { cron: string } | { everyMs: number };
}

/** What an activity receives when it runs a task instance. Small JSON only: pass data by URI. */
export interface TaskContext {
  dagId: string;
  /** The run's id (its workflow id). */
  runId: string;
  taskId: string;
  /** Position of this instance in a mapped task; absent for unmapped tasks. */
  mapIndex?: number;
  /** The item this instance of a mapped task works on. */
  item?: Json;
  params: Record<string, Json>;
  logicalDate: string;
  dataInterval: DataInterval | null;
  /** Outputs of upstream tasks by task id (a mapped upstream gives the list of its instances' outputs). */
  upstream: Record<string, Json>;
  /** 1 for the first attempt. */
  attempt: number;
}

/** An activity that runs a task. It returns small JSON (at most 256 KiB) or nothing. */
export type TaskActivity = (ctx: TaskContext) => Promise<Json | void>;

export interface TaskError {
  message: string;
  type?: string;
}

export interface TaskInstanceStatus {
  state: TaskState;
  attempts: number;
  /** ISO 8601. */
  startedAt?: string;
  endedAt?: string;
  error?: TaskError;
}

export interface TaskStatus extends TaskInstanceStatus {
  taskId: string;
  activity: string;
  /** For mapped tasks: how many instances there are and how many are in each state. */
  mapped?: {
    total: number;
    states: Partial<Record<TaskState, number>>;
    errors: { mapIndex: number; error: TaskError }[];
  };
}

/** Answer of the runner's `status` query, and the run's result. */
export interface DagRunStatus {
  dagId: string;
  runId: string;
  state: DagRunState;
  logicalDate: string;
  dataInterval: DataInterval | null;
  params: Record<string, Json>;
  startedAt: string;
  endedAt?: string;
  tasks: TaskStatus[];
  /** Outputs of successful tasks (absent for tasks that produced none). */
  outputs: Record<string, Json>;
  /**
   * Set on what a schedule started when the run of that logical date already existed (triggered or backfilled
   * first): `runId` names that run, `state` is its state then, and nothing ran again.
   */
  existing?: true;
}
