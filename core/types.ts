/**
 * The tempoflow glossary. Every public type lives here, so one file answers "what is a ...?".
 *
 * - **DAG**: a named graph of tasks with params and defaults, declared with `defineDag`. Once defined it is
 *   plain data (a `DagSnapshot`): the runner receives it whole, so each run records exactly what it ran.
 * - **Task**: one node of the DAG. It runs one **activity** (a function registered on a worker, by name).
 * - **Task instance**: one execution of a task in a run; a mapped task has one instance per item (`mapIndex`).
 * - **Run** (DAG run): one execution of a DAG, one Temporal workflow (the runner). Its id is the workflow id.
 * - **Logical date**: the instant a run is "for"; for scheduled runs, the scheduled time (as with Airflow 3's
 *   `CronTriggerTimetable`), which ends its data interval; Airflow 2's default put it at the interval's start.
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
  | {
      type: 'string';
      default?: string;
      enum?: readonly string[];
      pattern?: string;
      description?: string;
      required?: boolean;
      /**
       * A storage location (`s3://bucket/prefix` or a local path). A relative local path given to the CLI (or the
       * client API) is made absolute against its folder before the run starts, so the run records where it reads
       * or writes, whichever worker runs it.
       */
      location?: boolean;
    }
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
  /** Activities called with a `TaskAlert` when this task fails (after its last attempt). */
  onFailure?: AlertCallbacks;
  /** Activities called with a `TaskAlert` when an attempt of this task failed and will be retried. */
  onRetry?: AlertCallbacks;
  /** Activities called with a `TaskAlert` when this task succeeds. */
  onSuccess?: AlertCallbacks;
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
  upstream?: readonly string[];
  triggerRule?: TriggerRule;
  map?: MapSpec;
  /** The task's output is a task id or a list of task ids to follow; other direct downstream tasks are skipped. */
  branch?: boolean;
  /**
   * Instances of this task that share the value of this param run one at a time, across all runs (e.g.
   * `'output'`: publishing to one location is serialized while the rest of the runs go on in parallel).
   */
  exclusiveBy?: string;
  /**
   * An upstream task whose worker this task prefers (its cache makes the work cheaper): when that task's output
   * has a `workerQueue` (its worker's own queue, `ctx.workerQueue`), the first attempt is offered there for a few
   * seconds, then on the task's usual queue. Only a preference: correctness never depends on it.
   */
  preferWorkerOf?: string;
  /**
   * Makes the task a sensor: its activity checks a condition (returning a `SensorCheck`) every `every` until it
   * holds or `timeout` has passed since the first check. Between checks the run waits on a durable timer, so a
   * waiting sensor holds no worker slot. On timeout the task fails, or is skipped with `softFail`.
   */
  sensor?: SensorSpec;
  /**
   * A named pool (`tempoflow pools set <name> <slots>`) whose slots are shared by every run of every DAG: the
   * task stays `scheduled` until it gets `poolSlots` (default 1) of them, and holds them until it ends.
   */
  pool?: string;
  poolSlots?: number;
  /**
   * Runs each attempt as a Temporal local activity: on the worker that runs the DAG run, without a round trip
   * through the server's task queue (one marker in the history instead of three events). For many short instances
   * of a mapped task (seconds, not minutes): a local activity cannot heartbeat to the server, so it cannot take
   * `heartbeatTimeout`, `taskQueue`, `preferWorkerOf` or `sensor`.
   */
  localActivity?: boolean;
  description?: string;
}

export interface SensorSpec {
  /** Time between checks, e.g. `'5m'`. */
  every: Duration;
  /** The sensor gives up this long after its first check, e.g. `'6h'`. */
  timeout: Duration;
  /** On timeout the task is `skipped` (downstream tasks follow their trigger rules) instead of `failed`. */
  softFail?: boolean;
}

/**
 * What a sensor's activity returns: `true` when the condition holds (`false` when not yet), or an object that
 * also gives the task's output once done and a short `detail` shown while waiting (e.g. what is missing).
 */
export type SensorCheck = boolean | { done: boolean; output?: Json; detail?: string };

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
  /** Activities called with a `TaskAlert` when a run fails (once per run). */
  onFailure?: AlertCallbacks;
  /** Activities called with a `TaskAlert` when a run succeeds (once per run). */
  onSuccess?: AlertCallbacks;
  /** Activities called with a `TaskAlert` whenever an attempt of any task of the run will be retried. */
  onRetry?: AlertCallbacks;
  /** A run should end within this long of its start; when it has not, `onSlaMiss` is called once (the run goes on). */
  sla?: Duration;
  /** Activities called with a `TaskAlert` when a run misses its `sla`. */
  onSlaMiss?: AlertCallbacks;
  tasks: readonly TaskDefinition[];
  /**
   * Checks across params that the per-param specs cannot express (e.g. two locations that must not overlap):
   * the problems found, each naming its params, or none. Run with defaults filled in before a run, schedule or
   * backfill starts (a `ParamValidationError` naming the DAG). Code, so not part of the snapshot: a run's tasks
   * check again what they rely on (runs a schedule starts, or older clients, skip this).
   */
  validateParams?: (params: Record<string, Json>) => string[];
  /**
   * Shapes how a run's outcome is told (`trigger --wait/--local`, `runs show`, their `--json`): what the run
   * produced, in the DAG's own terms, from its final status. Code, so not part of the snapshot: the CLI calls it
   * with the project's DAG. Without it, the summary lists the final tasks' outputs in full.
   */
  summary?: (run: DagRunStatus) => RunSummary;
}

/** A run's outcome told plainly: a headline and titled sections of label/value rows, never truncated. */
export interface RunSummary {
  headline: string;
  /** `ok` or `problem` colours the headline; the run's own state stays what it is. */
  verdict?: 'ok' | 'warning' | 'problem';
  sections: { title: string; rows: { label: string; value: string }[] }[];
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
  preferWorkerOf?: string;
  sensor?: { everyMs: number; timeoutMs: number; softFail: boolean };
  pool?: { name: string; slots: number };
  /** Each attempt runs as a local activity on the runner's worker. */
  localActivity?: true;
  /** This task's alert callbacks (its own or the DAG's `defaults`; `onRetry` also lists the DAG's). */
  alerts?: TaskAlertCallbacks;
}

export interface DagSnapshot {
  id: string;
  description: string;
  params: Record<string, ParamSpec>;
  maxActiveTasks: number;
  schedule?: { cron?: string; everyMs?: number };
  /** The run's alert callbacks and SLA (absent when the DAG sets none). */
  alerts?: RunAlertCallbacks;
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

/**
 * What an activity receives when it runs a task instance. Small JSON only: pass data by URI. Untyped by default;
 * `TaskContextOf<typeof dag, 'task', Activities>` gives a task its DAG's params, its upstream outputs and its item
 * typed (see "Typed DAGs" below).
 */
export interface TaskContext<P = Record<string, Json>, U = Record<string, Json>, I = Json> {
  dagId: string;
  /** The run's id (its workflow id). */
  runId: string;
  taskId: string;
  /** Position of this instance in a mapped task; absent for unmapped tasks. */
  mapIndex?: number;
  /** The item this instance of a mapped task works on. */
  item?: I;
  /** The run's params, defaults filled in. */
  params: P;
  logicalDate: string;
  dataInterval: DataInterval | null;
  /** Outputs of upstream tasks by task id (a mapped upstream gives the list of its instances' outputs). */
  upstream: U;
  /** 1 for the first attempt. */
  attempt: number;
  /**
   * The task queue only this worker polls, when it has one (`ownTaskQueue` of the worker): returned in an
   * output as `workerQueue`, downstream tasks with `preferWorkerOf` this task prefer this worker.
   */
  workerQueue?: string;
}

/** An activity that runs a task. It returns small JSON (at most 256 KiB) or nothing. */
export type TaskActivity<C extends TaskContext<unknown, unknown, unknown> = TaskContext> = (
  ctx: C,
) => Promise<Json | void>;

/** Any task activity, whatever context type it declares (what a project's activities record holds). */
// `never` accepts every parameter type: an activity typed for one DAG's params is still an activity.
export type AnyTaskActivity = (ctx: never) => Promise<Json | void>;

/** Task activities by name (a project's, a worker's); a task's `activity` names one of them. */
export type ActivityRecord = Record<string, AnyTaskActivity>;

// ---------------------------------------------------------------------------------------------------------------
// Typed DAGs: what `defineDag` remembers of its definition at compile time, and what follows from it

/**
 * A DAG as `defineDag` returns it: its snapshot, plus (for the type checker only, never set at run time) the
 * definition it came from, so task ids, activity names and param specs stay literal types.
 */
export type Dag<D extends DagDefinition = DagDefinition> = DagSnapshot & { readonly '~definition'?: D };

/** The type a param has in a task's context, from its spec (an `enum` gives the union of its values). */
export type ParamValue<S extends ParamSpec> = S extends { type: 'string'; enum: readonly (infer E extends string)[] }
  ? E
  : S extends { type: 'string' }
    ? string
    : S extends { type: 'boolean' }
      ? boolean
      : number;

type AlwaysSet<S> = S extends { default: unknown } ? true : S extends { required: true } ? true : false;
type Flatten<T> = { [K in keyof T]: T[K] } & {};

/** A run's params, typed from the specs: params with a default or `required` are always present. */
export type ParamsFromSpecs<P> = Flatten<
  {
    -readonly [K in keyof P as AlwaysSet<P[K]> extends true ? K : never]: P[K] extends ParamSpec
      ? ParamValue<P[K]>
      : never;
  } & {
    -readonly [K in keyof P as AlwaysSet<P[K]> extends true ? never : K]?: P[K] extends ParamSpec
      ? ParamValue<P[K]>
      : never;
  }
>;

type DefinitionOf<D> = D extends { readonly '~definition'?: infer Def } ? NonNullable<Def> : never;
type TasksOf<D> = DefinitionOf<D> extends { tasks: readonly (infer T)[] } ? T : never;
type TaskOf<D, Id> = Extract<TasksOf<D>, { id: Id }>;

/** The params a DAG's tasks receive. */
export type ParamsOf<D> = DefinitionOf<D> extends { params: infer P } ? ParamsFromSpecs<P> : Record<string, never>;

/** The task ids of a DAG. */
export type TaskIdOf<D> = TasksOf<D> extends { id: infer Id extends string } ? Id : never;

type UpstreamIdOf<T> =
  | (T extends { upstream: readonly (infer U extends string)[] } ? U : never)
  | (T extends { map: { over: infer O extends string } } ? O : never);

/** What a task's activity returns (JSON when the activities are not given or the name is not literal). */
type OutputOfTask<D, Id, A> =
  TaskOf<D, Id> extends { activity: infer N } ? (N extends keyof A ? ActivityOutput<A[N]> : Json) : Json;
type ActivityOutput<F> = F extends (...args: never[]) => Promise<infer R> ? Exclude<R, void> : Json;

/** What downstream tasks see of a task's output: a mapped task gives the list of its instances' outputs. */
export type OutputOf<D, Id, A = unknown> =
  TaskOf<D, Id> extends { map: object } ? OutputOfTask<D, Id, A>[] : OutputOfTask<D, Id, A>;

/**
 * The upstream outputs a task receives. Under the default trigger rule every upstream task succeeded, so each
 * output is there (unless its activity returns nothing); other trigger rules may run the task without them.
 */
export type UpstreamOf<D, Id, A = unknown> =
  TaskOf<D, Id> extends { triggerRule: infer R }
    ? R extends 'all_success'
      ? { [U in UpstreamIdOf<TaskOf<D, Id>>]: OutputOf<D, U, A> }
      : { [U in UpstreamIdOf<TaskOf<D, Id>>]?: OutputOf<D, U, A> }
    : { [U in UpstreamIdOf<TaskOf<D, Id>>]: OutputOf<D, U, A> };

/** The item a mapped task's instance works on: an element of the mapped-over output (or of its `field`). */
export type ItemOf<D, Id, A = unknown> =
  TaskOf<D, Id> extends { map: { over: infer O; field: infer F extends string } }
    ? OutputOf<D, O, A> extends Record<F, readonly (infer E)[]>
      ? E
      : Json
    : TaskOf<D, Id> extends { map: { over: infer O } }
      ? OutputOf<D, O, A> extends readonly (infer E)[]
        ? E
        : Json
      : never;

/**
 * The context of task `Id` of DAG `D`: params typed from the DAG's specs, upstream outputs typed from the return
 * types of the upstream tasks' activities in `A` (e.g. `{ extract: typeof extract }`), the item of a mapped task
 * typed from the output it maps over.
 */
export type TaskContextOf<D, Id extends TaskIdOf<D>, A = unknown> = ContextOfTask<D, Id, A>;
type ContextOfTask<D, Id, A> =
  TaskOf<D, Id> extends { map: object }
    ? TaskContext<ParamsOf<D>, UpstreamOf<D, Id, A>, ItemOf<D, Id, A>> & { item: ItemOf<D, Id, A>; mapIndex: number }
    : TaskContext<ParamsOf<D>, UpstreamOf<D, Id, A>, never>;

type ContextOfActivity<F> = F extends (ctx: infer C) => unknown ? C : never;

/** Why a task does not fit the project's activities, or `never` when it does. */
type TaskProblem<D, T, A> = T extends { id: infer Id extends string; activity: infer N extends string }
  ? string extends N
    ? never // a name only known at run time: the worker checks it when it starts
    : N extends keyof A
      ? ContextOfTask<D, Id, A> extends ContextOfActivity<A[N]>
        ? never
        : `DAG '${DagIdOf<D>}', task '${Id}': activity '${N}' declares a context this task does not give (its params, upstream outputs or item differ)`
      : `DAG '${DagIdOf<D>}', task '${Id}': activity '${N}' is not one of the project's activities`
  : never;
type DagIdOf<D> = DefinitionOf<D> extends { id: infer Id extends string } ? Id : string;

/**
 * The problems of a project's DAGs against its activities, checked by `defineProject` at compile time: a task
 * naming an activity the project does not have, or an activity whose declared context does not match its task.
 */
export type ProjectProblems<Dags extends readonly DagSnapshot[], A> = Dags[number] extends infer D
  ? D extends unknown
    ? | TaskProblem<D, TasksOf<D>, A>
      | CallbackProblem<D, DefinitionOf<D>, 'the DAG', A>
      | TaskCallbackProblem<D, TasksOf<D>, A>
    : never
  : never;

/** Alert callbacks the worker registers itself (core/alerts.ts `WEBHOOK_NOTIFIER`). */
type BuiltinCallback = 'tempoflowWebhook';
type NamesIn<C> = C extends string ? C : C extends readonly (infer N extends string)[] ? N : never;
type CallbackNamesOf<X> =
  | (X extends { onFailure: infer C } ? NamesIn<C> : never)
  | (X extends { onRetry: infer C } ? NamesIn<C> : never)
  | (X extends { onSuccess: infer C } ? NamesIn<C> : never)
  | (X extends { onSlaMiss: infer C } ? NamesIn<C> : never)
  | (X extends { defaults: infer T } ? CallbackNamesOf<T> : never);
/** An alert callback (of the DAG, its defaults or a task) that names no activity of the project. */
type CallbackProblem<D, X, Where extends string, A> =
  CallbackNamesOf<X> extends infer N
    ? N extends string
      ? string extends N
        ? never
        : N extends keyof A | BuiltinCallback
          ? never
          : `DAG '${DagIdOf<D>}', ${Where}: alert callback '${N}' is not one of the project's activities`
      : never
    : never;
type TaskCallbackProblem<D, T, A> = T extends { id: infer Id extends string }
  ? CallbackProblem<D, Omit<T, 'defaults'>, `task '${Id}'`, A>
  : never;

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
  /** A sensor's progress: checks so far, when the next one is due, what the last one said. */
  sensor?: SensorStatus;
  /** What a `scheduled` task waits for before it can start, e.g. `pool s3_heavy (2/2 used)`. */
  waitingFor?: string;
}

export interface SensorStatus {
  checks: number;
  /** ISO 8601: when the sensor gives up. */
  timeoutAt: string;
  /** ISO 8601, while waiting for the next check. */
  nextCheckAt?: string;
  /** The last check's `detail`. */
  lastDetail?: string;
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
  /** The run's summary (`RunSummary`), added by the client from the DAG's `summary` hook; never set by the runner. */
  summary?: RunSummary;
  /** Alerts of the run (set when the DAG has alert callbacks or an SLA). */
  alerts?: RunAlertsStatus;
}

// ---------------------------------------------------------------------------------------------------------------
// Alerts

/**
 * The name of an activity to call with a `TaskAlert`, or several. Activities, not functions: the DAG is plain data
 * sent to the runner. `'tempoflowWebhook'` is built in (a Slack-compatible POST to the worker's
 * `TEMPOFLOW_WEBHOOK_URL`).
 */
export type AlertCallbacks = string | readonly string[];

export const ALERT_EVENTS = ['failure', 'retry', 'success', 'sla_miss'] as const;
export type AlertEvent = (typeof ALERT_EVENTS)[number];

export interface TaskAlertCallbacks {
  onFailure?: string[];
  onRetry?: string[];
  onSuccess?: string[];
}

export interface RunAlertCallbacks {
  onFailure?: string[];
  onSuccess?: string[];
  onSlaMiss?: string[];
  /** Called for a retry of any task. */
  onRetry?: string[];
  slaMs?: number;
}

/** What an alert callback receives: small JSON. */
export interface TaskAlert {
  event: AlertEvent;
  dagId: string;
  runId: string;
  /** Absent for the run's own alerts (failure, success, SLA miss). */
  taskId?: string;
  mapIndex?: number;
  /** The attempt that failed (retry) or the task's last attempt. */
  attempt?: number;
  /** The task's state, or the run's. */
  state: string;
  /** The error message of a failure or retry. */
  error?: string;
  logicalDate: string;
  /** The run in the Temporal Web UI, when the worker knows its address (`TEMPORAL_UI_URL`). */
  url?: string;
}

export interface RunAlertsStatus {
  /** Alerts sent so far (each calls all of its callbacks). */
  sent: number;
  /** When the run missed its SLA. */
  slaMissedAt?: string;
  /** Callbacks that failed (the run goes on regardless); the first 50. */
  errors: { event: AlertEvent; taskId?: string; callback: string; message: string }[];
}
