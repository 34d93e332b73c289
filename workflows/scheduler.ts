/**
 * The runner's scheduling as a pure state machine: no Temporal imports, no clock, no I/O, so it is unit-tested
 * without a server (test/scheduler.test.ts). The runner workflow (dag-run.ts) is a loop around it: it carries out
 * the decisions (start an activity, a timer, a child workflow, a lock request or release) and feeds back what
 * happened as outcomes. This module is the one place that changes a run's status.
 *
 * The order of the decisions is the order of the workflow's commands, which recorded histories replay against:
 * follow-ups of outcomes (a retry's timer, the attempt after it, a lock's release, a map lane's next instance)
 * come first, in the order the outcomes arrived, then tasks that became ready, in the DAG's (topological) order.
 */
import { checkOutputSize } from '../core/task-output';
import { decideTrigger } from '../core/trigger-rules';
import { FINISHED_TASK_STATES } from '../core/types';
import type {
  DagRunInput,
  DagRunState,
  DagRunStatus,
  Json,
  RunAlertsStatus,
  SensorStatus,
  TaskContext,
  TaskError,
  TaskInstanceStatus,
  TaskSnapshot,
  TaskState,
  TaskStatus,
} from '../core/types';

export interface SchedulerLimits {
  /** Mapped tasks with more items than this run in batches (child workflows). */
  mapInlineLimit: number;
  mapBatchSize: number;
}

export type BaseContext = Omit<TaskContext, 'attempt'>;

/** What one batch of a large map reports (the `dagRunMapBatch` child workflow's result). */
export interface BatchResult {
  outputs: Json[];
  states: Partial<Record<TaskState, number>>;
  errors: { mapIndex: number; error: TaskError }[];
  maxAttempts: number;
  /** The retry alerts the batch sent (absent when it sent none). */
  alerts?: RunAlertsStatus;
}

export interface BatchInput {
  task: TaskSnapshot;
  ctx: BaseContext;
  items: Json[];
  /** Map index of `items[0]`. */
  firstIndex: number;
  maxActive: number;
}

/** What the workflow does next. `skip` and `upstream_failed` are already recorded: they need no command. */
export type Decision =
  | { kind: 'skip'; taskId: string }
  | { kind: 'upstream_failed'; taskId: string }
  | { kind: 'request_lock'; taskId: string; task: TaskSnapshot; lockParam: Json | undefined }
  | { kind: 'start_attempt'; taskId: string; unit: number; task: TaskSnapshot; ctx: TaskContext }
  | { kind: 'start_batch'; taskId: string; unit: number; input: BatchInput }
  | { kind: 'retry_after'; taskId: string; unit: number; delayMs: number }
  | { kind: 'release_lock'; taskId: string }
  | { kind: 'finish_run'; state: 'success' | 'failed' };

/** What happened. `unit` is 0 for an unmapped task, the map index of an instance, or the number of a batch. */
export type Outcome =
  | { kind: 'lock_granted'; taskId: string }
  | { kind: 'attempt_succeeded'; taskId: string; unit: number; output: Json }
  | { kind: 'attempt_failed'; taskId: string; unit: number; error: TaskError; nonRetryable: boolean }
  | { kind: 'retry_due'; taskId: string; unit: number }
  | { kind: 'batch_finished'; taskId: string; unit: number; result: BatchResult }
  /** The machinery around a task failed (its lock request, a batch's child workflow): the task fails. */
  | { kind: 'unit_crashed'; taskId: string; unit: number; error: TaskError }
  /** A pool request joined the pool's queue, which had this usage then. */
  | { kind: 'pool_queued'; taskId: string; usage: { slots: number; used: number; waiting: number } }
  /** A sensor checked its condition: it holds (no `nextCheckAt`) or is checked again at `nextCheckAt`. */
  | { kind: 'sensor_checked'; taskId: string; sensor: SensorStatus };

/** Error type of a sensor whose condition did not hold within its timeout (a `softFail` sensor is skipped). */
export const SENSOR_TIMEOUT = 'SensorTimeout';

/** One thing that runs: an unmapped task, one instance of a mapped task, or one batch of a large map. */
interface Unit {
  status: TaskInstanceStatus;
  finished: boolean;
  /** Holds its task's `weight` of the DAG's slots (from its start to its end). */
  holdsSlots: boolean;
  /** Delay before the next retry. */
  delayMs: number;
}

interface TaskRun {
  task: TaskSnapshot;
  status: TaskStatus;
  mode?: 'single' | 'inline' | 'batches';
  ctx?: BaseContext;
  items: Json[];
  units: Unit[];
  nextUnit: number;
  /** Slots of the DAG's `maxActiveTasks` one unit holds. */
  weight: number;
  /** Units running at most at once (a mapped task's `maxActive`). */
  lanes: number;
  outputs: Json[];
  errors: { mapIndex: number; error: TaskError }[];
  batchStates: Partial<Record<TaskState, number>>;
  maxAttempts: number;
  lock: 'none' | 'requested' | 'held' | 'released';
}

export interface RunState {
  readonly status: DagRunStatus;
  readonly tasks: ReadonlyMap<string, TaskRun>;
  readonly dagTasks: readonly TaskSnapshot[];
  readonly limits: SchedulerLimits;
  readonly maxActiveTasks: number;
  slotsUsed: number;
  /** Tasks waiting for a slot to start their next unit, first come first served (one entry per lane). */
  laneRequests: string[];
}

export function createRunState(input: DagRunInput, runId: string, now: string, limits: SchedulerLimits): RunState {
  const { dag } = input;
  const status: DagRunStatus = {
    dagId: dag.id,
    runId,
    state: 'running',
    logicalDate: input.logicalDate,
    dataInterval: input.dataInterval,
    params: input.params,
    startedAt: now,
    tasks: dag.tasks.map((t) => ({ taskId: t.id, activity: t.activity, state: 'waiting', attempts: 0 })),
    outputs: {},
  };
  const tasks = new Map<string, TaskRun>();
  dag.tasks.forEach((task, i) => {
    tasks.set(task.id, {
      task,
      status: status.tasks[i]!,
      items: [],
      units: [],
      nextUnit: 0,
      weight: 1,
      lanes: 1,
      outputs: [],
      errors: [],
      batchStates: {},
      maxAttempts: 0,
      lock: 'none',
    });
  });
  for (const [taskId, output] of Object.entries(input.reuse ?? {})) {
    const tr = tasks.get(taskId);
    if (!tr) continue;
    tr.status.state = 'success';
    status.outputs[taskId] = output;
  }
  return {
    status,
    tasks,
    dagTasks: dag.tasks,
    limits,
    maxActiveTasks: dag.maxActiveTasks,
    slotsUsed: 0,
    laneRequests: [],
  };
}

const isFinished = (state: TaskState) => FINISHED_TASK_STATES.includes(state);

/** A branch task that did not choose `downstreamId` counts as skipped for it (Airflow's branching). */
function effectiveState(run: RunState, upstreamId: string, downstreamId: string): TaskState {
  const up = run.tasks.get(upstreamId)!;
  const state = up.status.state;
  if (state !== 'success' || !up.task.branch) return state;
  const chosen = run.status.outputs[upstreamId];
  const follow = Array.isArray(chosen) ? chosen : [chosen];
  return follow.includes(downstreamId) ? 'success' : 'skipped';
}

/** Waiting tasks whose trigger rule is decided now, with the decision (the caps apply when they start). */
export function readyTasks(run: RunState): { taskId: string; decision: 'run' | 'skip' | 'upstream_failed' }[] {
  const ready: { taskId: string; decision: 'run' | 'skip' | 'upstream_failed' }[] = [];
  for (const task of run.dagTasks) {
    if (run.tasks.get(task.id)!.status.state !== 'waiting') continue;
    const decision = decideTrigger(
      task.triggerRule,
      task.upstream.map((up) => effectiveState(run, up, task.id)),
    );
    if (decision !== 'wait') ready.push({ taskId: task.id, decision });
  }
  return ready;
}

/**
 * Decides what to do now: skips or fails tasks whose upstream tasks decide it, starts tasks whose trigger rule is
 * met, and starts units while the DAG's `maxActiveTasks` and each map's `maxActive` allow. Ends with
 * `finish_run` once every task is finished.
 */
export function nextDecisions(run: RunState, now: string): Decision[] {
  const decisions: Decision[] = [];
  // A skip or a failure decides further tasks downstream, in the same step.
  for (let ready = readyTasks(run); ready.length; ready = readyTasks(run)) {
    for (const { taskId, decision } of ready) {
      const tr = run.tasks.get(taskId)!;
      if (tr.status.state !== 'waiting') continue;
      if (decision === 'run') {
        activate(run, tr, now, decisions);
        continue;
      }
      tr.status.state = decision === 'skip' ? 'skipped' : 'upstream_failed';
      tr.status.endedAt = now;
      decisions.push({ kind: decision, taskId });
    }
  }
  fillSlots(run, now, decisions);
  if (run.status.tasks.every((t) => isFinished(t.state))) {
    const failed = run.status.tasks.some((t) => t.state === 'failed' || t.state === 'upstream_failed');
    decisions.push({ kind: 'finish_run', state: failed ? 'failed' : 'success' });
  }
  return decisions;
}

function baseContext(run: RunState, task: TaskSnapshot): BaseContext {
  const { status } = run;
  const upstream: Record<string, Json> = {};
  for (const up of task.upstream) {
    // A mapped task's instances get their item instead of the whole list they are mapped over.
    if (up === task.map?.over) continue;
    if (up in status.outputs) upstream[up] = status.outputs[up]!;
  }
  return {
    dagId: status.dagId,
    runId: status.runId,
    taskId: task.id,
    params: status.params,
    logicalDate: status.logicalDate,
    dataInterval: status.dataInterval,
    upstream,
  };
}

function newUnit(status: TaskInstanceStatus, task: TaskSnapshot): Unit {
  return { status, finished: false, holdsSlots: false, delayMs: task.retry.initialDelayMs };
}

/** A task whose trigger rule is met: it gets its units, and asks for its lock or for slots. */
function activate(run: RunState, tr: TaskRun, now: string, decisions: Decision[]): void {
  const { task, status } = tr;
  tr.ctx = baseContext(run, task);
  if (!task.map) {
    tr.mode = 'single';
    tr.units = [newUnit(status, task)]; // an unmapped task's one instance is the task
    status.state = 'scheduled';
    if (task.exclusiveBy || task.pool) {
      tr.lock = 'requested';
      status.waitingFor = task.pool ? `pool ${task.pool.name}` : `the lock on ${task.exclusiveBy}`;
      const lockParam = task.exclusiveBy ? run.status.params[task.exclusiveBy] : undefined;
      decisions.push({ kind: 'request_lock', taskId: task.id, task, lockParam });
    } else run.laneRequests.push(task.id);
    return;
  }
  const items = mapItems(task, run.status.outputs[task.map.over]);
  if (typeof items === 'string') return failTask(tr, { message: items, type: 'InvalidMapInput' }, now);
  if (items.length === 0) {
    status.state = 'skipped';
    status.endedAt = now;
    status.mapped = { total: 0, states: {}, errors: [] };
    return;
  }
  tr.items = items;
  tr.outputs = new Array<Json>(items.length).fill(null);
  status.state = 'running';
  status.startedAt = now;
  status.mapped = { total: items.length, states: { waiting: items.length }, errors: [] };
  if (items.length <= run.limits.mapInlineLimit) {
    tr.mode = 'inline';
    tr.units = items.map(() => newUnit({ state: 'waiting', attempts: 0 }, task));
    tr.lanes = Math.min(task.map.maxActive, items.length);
  } else {
    // Each batch runs up to `perBatch` instances at once and holds that many of the DAG's slots.
    tr.mode = 'batches';
    const perBatch = Math.min(task.map.maxActive, run.maxActiveTasks);
    const batchCount = Math.ceil(items.length / run.limits.mapBatchSize);
    tr.units = Array.from({ length: batchCount }, () => newUnit({ state: 'waiting', attempts: 0 }, task));
    tr.weight = perBatch;
    tr.lanes = Math.min(Math.max(1, Math.floor(task.map.maxActive / perBatch)), batchCount);
    tr.batchStates = { waiting: items.length };
  }
  for (let lane = 0; lane < tr.lanes; lane++) run.laneRequests.push(task.id);
}

function fillSlots(run: RunState, now: string, decisions: Decision[]): void {
  const stillWaiting: string[] = [];
  for (const taskId of run.laneRequests) {
    const tr = run.tasks.get(taskId)!;
    if (isFinished(tr.status.state) || tr.nextUnit >= tr.units.length) continue;
    if (run.slotsUsed + tr.weight > run.maxActiveTasks) {
      stillWaiting.push(taskId);
      continue;
    }
    run.slotsUsed += tr.weight;
    tr.units[tr.nextUnit]!.holdsSlots = true;
    startUnit(run, tr, tr.nextUnit++, now, decisions);
  }
  run.laneRequests = stillWaiting;
}

function startUnit(run: RunState, tr: TaskRun, index: number, now: string, decisions: Decision[]): void {
  const { task } = tr;
  const ctx = tr.ctx!;
  if (tr.mode === 'batches') {
    const firstIndex = index * run.limits.mapBatchSize;
    const items = tr.items.slice(firstIndex, firstIndex + run.limits.mapBatchSize);
    tr.units[index]!.status.state = 'running';
    decisions.push({
      kind: 'start_batch',
      taskId: task.id,
      unit: index,
      input: { task, ctx, items, firstIndex, maxActive: tr.weight },
    });
    return;
  }
  const attemptCtx: BaseContext = tr.mode === 'inline' ? { ...ctx, mapIndex: index, item: tr.items[index]! } : ctx;
  decisions.push(startAttempt(tr, index, attemptCtx, 1, now));
}

function startAttempt(tr: TaskRun, index: number, ctx: BaseContext, attempt: number, now: string): Decision {
  const unit = tr.units[index]!.status;
  unit.state = 'running';
  unit.attempts = attempt;
  unit.startedAt ??= now;
  summarize(tr);
  return { kind: 'start_attempt', taskId: tr.task.id, unit: index, task: tr.task, ctx: { ...ctx, attempt } };
}

/** Records what happened, and returns what follows from it at once (a retry's timer, its attempt, a release). */
export function applyOutcome(run: RunState, outcome: Outcome, now: string): Decision[] {
  const tr = run.tasks.get(outcome.taskId);
  if (!tr) throw new Error(`outcome for unknown task '${outcome.taskId}'`);
  if (outcome.kind === 'lock_granted') {
    if (tr.lock !== 'requested') return [];
    tr.lock = 'held';
    delete tr.status.waitingFor;
    run.laneRequests.push(tr.task.id);
    return [];
  }
  if (outcome.kind === 'pool_queued') {
    const { slots, used, waiting } = outcome.usage;
    const queue = waiting > 1 ? `, ${waiting} waiting` : '';
    if (tr.lock === 'requested') tr.status.waitingFor = `pool ${tr.task.pool!.name} (${used}/${slots} used${queue})`;
    return [];
  }
  if (outcome.kind === 'sensor_checked') {
    if (!isFinished(tr.status.state)) tr.status.sensor = outcome.sensor;
    return [];
  }
  const unit = tr.units[outcome.unit];
  const decisions: Decision[] = [];
  // A task failed while others of its units ran (a crashed batch): their outcomes only free their slots.
  const taskOpen = !isFinished(tr.status.state);
  switch (outcome.kind) {
    case 'attempt_succeeded': {
      if (!unit || unit.finished) return [];
      unit.status.state = 'success';
      delete unit.status.error;
      unit.status.endedAt = now;
      if (tr.mode === 'single') {
        endUnit(run, tr, unit);
        if (taskOpen) finishSingle(run, tr, outcome.output, now);
      } else {
        tr.outputs[outcome.unit] = outcome.output;
        endUnit(run, tr, unit);
        if (taskOpen) afterInstance(run, tr, now);
      }
      break;
    }
    case 'attempt_failed': {
      if (!unit || unit.finished) return [];
      unit.status.error = outcome.error;
      unit.status.endedAt = now;
      if (tr.task.sensor?.softFail && outcome.error.type === SENSOR_TIMEOUT) {
        // A soft sensor that timed out is skipped: downstream tasks follow their trigger rules.
        unit.status.state = 'skipped';
        endUnit(run, tr, unit);
        break;
      }
      if (outcome.nonRetryable || unit.status.attempts >= tr.task.retry.maxAttempts) {
        unit.status.state = 'failed';
        endUnit(run, tr, unit);
        if (taskOpen && tr.mode === 'single') tr.status.state = 'failed';
        else if (taskOpen) {
          tr.errors.push({ mapIndex: outcome.unit, error: outcome.error });
          tr.errors.sort((a, b) => a.mapIndex - b.mapIndex);
          afterInstance(run, tr, now);
        }
        break;
      }
      unit.status.state = 'up_for_retry';
      summarize(tr);
      const { retry } = tr.task;
      decisions.push({ kind: 'retry_after', taskId: tr.task.id, unit: outcome.unit, delayMs: unit.delayMs });
      unit.delayMs = Math.min(unit.delayMs * retry.backoffCoefficient, retry.maxDelayMs);
      break;
    }
    case 'retry_due': {
      if (!unit || unit.finished || !taskOpen) return [];
      const ctx =
        tr.mode === 'inline' ? { ...tr.ctx!, mapIndex: outcome.unit, item: tr.items[outcome.unit]! } : tr.ctx!;
      decisions.push(startAttempt(tr, outcome.unit, ctx, unit.status.attempts + 1, now));
      break;
    }
    case 'batch_finished': {
      if (!unit || unit.finished) return [];
      unit.status.state = 'success';
      endUnit(run, tr, unit);
      if (!taskOpen) break;
      const { result } = outcome;
      const firstIndex = outcome.unit * run.limits.mapBatchSize;
      result.outputs.forEach((output, i) => (tr.outputs[firstIndex + i] = output));
      tr.batchStates.waiting = (tr.batchStates.waiting ?? 0) - result.outputs.length;
      for (const [state, n] of Object.entries(result.states)) {
        tr.batchStates[state as TaskState] = (tr.batchStates[state as TaskState] ?? 0) + n;
      }
      tr.errors.push(...result.errors);
      tr.errors.sort((a, b) => a.mapIndex - b.mapIndex);
      tr.maxAttempts = Math.max(tr.maxAttempts, result.maxAttempts);
      afterInstance(run, tr, now);
      break;
    }
    case 'unit_crashed': {
      if (unit && !unit.finished) {
        unit.status.state = 'failed';
        endUnit(run, tr, unit);
      }
      if (taskOpen) failTask(tr, outcome.error, now);
      break;
    }
  }
  if (isFinished(tr.status.state) && tr.lock === 'held') {
    tr.lock = 'released';
    decisions.push({ kind: 'release_lock', taskId: tr.task.id });
  }
  return decisions;
}

/** A unit is done: its slots are free, and its lane takes the task's next unit. */
function endUnit(run: RunState, tr: TaskRun, unit: Unit): void {
  unit.finished = true;
  if (unit.holdsSlots) run.slotsUsed -= tr.weight;
  unit.holdsSlots = false;
  if (tr.nextUnit < tr.units.length && !isFinished(tr.status.state)) run.laneRequests.push(tr.task.id);
}

function finishSingle(run: RunState, tr: TaskRun, output: Json, now: string): void {
  const { task } = tr;
  if (task.branch) {
    const downstream = run.dagTasks.filter((t) => t.upstream.includes(task.id)).map((t) => t.id);
    const chosen = Array.isArray(output) ? output : [output];
    const unknown = chosen.filter((id) => typeof id !== 'string' || !downstream.includes(id));
    if (unknown.length) {
      return failTask(
        tr,
        {
          message: `branch task '${task.id}' chose ${JSON.stringify(unknown)}, which are not its downstream tasks (${downstream.join(', ')})`,
          type: 'InvalidBranch',
        },
        now,
      );
    }
  }
  succeed(run, tr, output, now);
}

function succeed(run: RunState, tr: TaskRun, output: Json, now: string): void {
  const tooLarge = checkOutputSize(tr.task.id, output);
  if (tooLarge) return failTask(tr, tooLarge, now);
  tr.status.state = 'success';
  if (output !== null) run.status.outputs[tr.task.id] = output;
}

/** After an instance or a batch of a mapped task ends: the task ends with its last one. */
function afterInstance(run: RunState, tr: TaskRun, now: string): void {
  summarize(tr);
  if (!tr.units.every((u) => u.finished)) return;
  const { status } = tr;
  const total = tr.items.length;
  status.endedAt = now;
  status.attempts = tr.mode === 'batches' ? tr.maxAttempts : Math.max(0, ...tr.units.map((u) => u.status.attempts));
  const states = tr.mode === 'batches' ? { ...tr.batchStates } : countStates(tr.units);
  delete states.waiting;
  status.mapped = { total, states, errors: [...tr.errors] };
  if (tr.errors.length) {
    const first = tr.errors[0]!;
    return failTask(
      tr,
      {
        message: `${tr.errors.length} of ${total} instances failed; first: [${first.mapIndex}] ${first.error.message}`,
        type: first.error.type ?? 'MappedInstanceFailed',
      },
      now,
    );
  }
  succeed(run, tr, tr.outputs, now);
}

/** A mapped task's status: attempts and instance states so far. */
function summarize(tr: TaskRun): void {
  if (tr.mode === 'single' || !tr.status.mapped) return;
  const states = tr.mode === 'batches' ? { ...tr.batchStates } : countStates(tr.units);
  tr.status.mapped = { total: tr.items.length, states, errors: [...tr.errors] };
  if (tr.mode === 'inline') tr.status.attempts = Math.max(0, ...tr.units.map((u) => u.status.attempts));
}

function countStates(units: Unit[]): Partial<Record<TaskState, number>> {
  const states: Partial<Record<TaskState, number>> = {};
  for (const { status } of units) states[status.state] = (states[status.state] ?? 0) + 1;
  return states;
}

function failTask(tr: TaskRun, error: TaskError, now: string): void {
  tr.status.state = 'failed';
  tr.status.error = error;
  tr.status.endedAt = now;
}

/** The run's end: its state and, for a failed run, why (naming the failed tasks). */
export function finishRun(run: RunState, now: string): { state: 'success' | 'failed'; failureMessage?: string } {
  const { status } = run;
  const failed = status.tasks.filter((t) => t.state === 'failed');
  const state = failed.length || status.tasks.some((t) => t.state === 'upstream_failed') ? 'failed' : 'success';
  setRunState(run, state, now);
  if (state === 'success') return { state };
  const reasons = failed.map((t) => `task '${t.taskId}' failed: ${t.error?.message ?? 'unknown error'}`);
  return {
    state,
    failureMessage: `DAG '${status.dagId}' run failed: ${reasons.join('; ') || 'upstream tasks failed'}`,
  };
}

/** The run was cancelled: waiting tasks are skipped, started ones failed. */
export function cancelRun(run: RunState, now: string): void {
  for (const st of run.status.tasks) {
    if (st.state === 'waiting') st.state = 'skipped';
    else if (st.state === 'scheduled' || st.state === 'running' || st.state === 'up_for_retry') {
      st.state = 'failed';
      st.error = { message: 'the run was cancelled', type: 'Cancelled' };
      st.endedAt = now;
    }
  }
  setRunState(run, 'cancelled', now);
}

function setRunState(run: RunState, state: DagRunState, now: string): void {
  run.status.state = state;
  run.status.endedAt = now;
}

function mapItems(task: TaskSnapshot, output: Json | undefined): Json[] | string {
  const { over, field } = task.map!;
  const source = field === undefined ? output : isObject(output) ? output[field] : undefined;
  if (Array.isArray(source)) return source;
  const what = field === undefined ? `the output of '${over}'` : `'${field}' of the output of '${over}'`;
  return `task '${task.id}' maps over ${what}, which is not a list (got ${source === undefined ? 'nothing' : typeof source})`;
}

function isObject(value: Json | undefined): value is { [key: string]: Json } {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
