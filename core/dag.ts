import { z } from 'zod';
import { dagAlertShape, runAlerts, taskAlertShape, taskAlerts } from './alerts';
import { durationToMs } from './duration';
import { DagDefinitionError } from './errors';
import { registerParamsValidator } from './params';
import { registerSummary } from './summary';
import { checkCron } from './schedule';
import { TRIGGER_RULES } from './types';
import type { Dag, DagDefinition, DagSnapshot, TaskDefinition, TaskOptions, TaskSnapshot } from './types';
import { knownNames } from './suggest';

/** What ids and names look like (DAGs, tasks, params, pools): a letter, then letters, digits, _ . - */
export const ID = /^[A-Za-z][A-Za-z0-9_.-]*$/;
const duration = z.union([z.number().nonnegative(), z.string().min(1)]);

const taskOptionsShape = {
  retries: z.number().int().min(0).max(100).optional(),
  retryDelay: duration.optional(),
  retryBackoff: z.number().min(1).max(100).optional(),
  maxRetryDelay: duration.optional(),
  executionTimeout: duration.optional(),
  heartbeatTimeout: duration.optional(),
  taskQueue: z.string().min(1).optional(),
  ...taskAlertShape,
};

const paramSpec = z.discriminatedUnion('type', [
  z.strictObject({
    type: z.literal('string'),
    default: z.string().optional(),
    enum: z.array(z.string()).min(1).optional(),
    pattern: z.string().optional(),
    description: z.string().optional(),
    required: z.boolean().optional(),
    location: z.boolean().optional(),
  }),
  z.strictObject({
    type: z.enum(['integer', 'number']),
    default: z.number().optional(),
    min: z.number().optional(),
    max: z.number().optional(),
    description: z.string().optional(),
    required: z.boolean().optional(),
  }),
  z.strictObject({
    type: z.literal('boolean'),
    default: z.boolean().optional(),
    description: z.string().optional(),
    required: z.boolean().optional(),
  }),
]);

const taskSchema = z.strictObject({
  id: z.string().regex(ID, 'must start with a letter and use letters, digits, _ . -'),
  activity: z.string().min(1),
  upstream: z.array(z.string()).optional(),
  triggerRule: z.enum(TRIGGER_RULES).optional(),
  map: z
    .strictObject({
      over: z.string().min(1),
      field: z.string().min(1).optional(),
      maxActive: z.number().int().positive().optional(),
    })
    .optional(),
  branch: z.boolean().optional(),
  exclusiveBy: z.string().min(1).optional(),
  preferWorkerOf: z.string().min(1).optional(),
  sensor: z.strictObject({ every: duration, timeout: duration, softFail: z.boolean().optional() }).optional(),
  pool: z.string().regex(ID, 'a pool name must start with a letter and use letters, digits, _ . -').optional(),
  poolSlots: z.number().int().positive().optional(),
  localActivity: z.boolean().optional(),
  description: z.string().optional(),
  ...taskOptionsShape,
});

const dagSchema = z.strictObject({
  id: z.string().regex(ID, 'must start with a letter and use letters, digits, _ . -'),
  description: z.string().optional(),
  params: z.record(z.string().regex(ID, 'param names must be identifiers'), paramSpec).optional(),
  defaults: z.strictObject(taskOptionsShape).optional(),
  maxActiveTasks: z.number().int().positive().optional(),
  schedule: z.strictObject({ cron: z.string().min(1).optional(), every: duration.optional() }).optional(),
  ...dagAlertShape,
  tasks: z.array(z.unknown()).min(1, 'a DAG needs at least one task'),
  validateParams: z
    .custom<NonNullable<DagDefinition['validateParams']>>((v) => typeof v === 'function', 'must be a function')
    .optional(),
  summary: z
    .custom<NonNullable<DagDefinition['summary']>>((v) => typeof v === 'function', 'must be a function')
    .optional(),
});

const DEFAULT_MAX_ACTIVE_TASKS = 32;

/**
 * Declares a DAG. Validates everything that can be checked without running it and returns the DAG as plain,
 * frozen data (a snapshot), so it can be sent to the runner workflow as is.
 *
 * @throws DagDefinitionError naming the DAG and the task.
 */
export function defineDag<const D extends DagDefinition>(definition: D): Dag<D> {
  const dagName = typeof definition?.id === 'string' ? `DAG '${definition.id}'` : 'DAG';
  const schedule: unknown = definition?.schedule;
  if (typeof schedule === 'string') {
    // Airflow's `schedule="@daily"`: say the shape here, rather than zod's "expected object, received string".
    throw new DagDefinitionError(
      `${dagName}: schedule is an object: { cron: ${JSON.stringify(schedule)} } for a cron expression or preset, or { every: '1d' } for a fixed interval`,
    );
  }
  const dag = parseOrThrow(dagSchema, definition, dagName);
  const dagLabel = `DAG '${dag.id}'`;
  if (dag.schedule && !dag.schedule.cron === !dag.schedule.every) {
    throw new DagDefinitionError(`${dagLabel}: schedule needs exactly one of 'cron' or 'every'`);
  }
  if (dag.schedule?.cron) {
    try {
      checkCron(dag.schedule.cron);
    } catch (cause) {
      throw new DagDefinitionError(`${dagLabel}: schedule.cron '${dag.schedule.cron}' is not a valid cron expression`, {
        cause,
      });
    }
  }
  for (const [name, spec] of Object.entries(dag.params ?? {})) {
    if (spec.type === 'string' && spec.pattern !== undefined) {
      try {
        new RegExp(spec.pattern);
      } catch (cause) {
        throw new DagDefinitionError(`${dagLabel}: param '${name}': pattern is not a valid regular expression`, {
          cause,
        });
      }
    }
  }

  const tasks = dag.tasks.map((raw, index) => {
    const id = (raw as { id?: unknown } | null)?.id;
    const label = `${dagLabel}, task ${typeof id === 'string' ? `'${id}'` : `#${index + 1}`}`;
    const task: TaskDefinition = parseOrThrow(taskSchema, raw, label);
    return task;
  });

  const byId = new Map<string, TaskDefinition>();
  for (const task of tasks) {
    if (byId.has(task.id)) throw new DagDefinitionError(`${dagLabel}: duplicate task id '${task.id}'`);
    byId.set(task.id, task);
  }

  const snapshots = new Map<string, TaskSnapshot>();
  for (const task of tasks) {
    const label = `${dagLabel}, task '${task.id}'`;
    const upstream = [...new Set([...(task.upstream ?? []), ...(task.map ? [task.map.over] : [])])];
    for (const up of upstream) {
      if (up === task.id) throw new DagDefinitionError(`${label}: a task cannot be its own upstream`);
      if (!byId.has(up)) {
        throw new DagDefinitionError(`${label}: unknown upstream task '${up}'${knownNames(up, [...byId.keys()])}`);
      }
    }
    if (task.exclusiveBy !== undefined && !(task.exclusiveBy in (dag.params ?? {}))) {
      throw new DagDefinitionError(
        `${label}: exclusiveBy names '${task.exclusiveBy}', which is not a param of the DAG`,
      );
    }
    if (task.preferWorkerOf !== undefined && !upstream.includes(task.preferWorkerOf)) {
      throw new DagDefinitionError(
        `${label}: preferWorkerOf names '${task.preferWorkerOf}', which is not an upstream task of it`,
      );
    }
    if (task.exclusiveBy !== undefined && task.map) {
      throw new DagDefinitionError(`${label}: a mapped task cannot be exclusiveBy a param`);
    }
    checkSensorAndPool(task, label);
    if (task.map && byId.get(task.map.over)?.branch) {
      throw new DagDefinitionError(`${label}: cannot map over branch task '${task.map.over}'`);
    }
    const taskSnapshot = snapshotTask(
      task,
      upstream,
      dag.defaults ?? {},
      dag.maxActiveTasks ?? DEFAULT_MAX_ACTIVE_TASKS,
      label,
    );
    const alerts = taskAlerts(task, dag.defaults ?? {}, dag.onRetry);
    if (alerts) taskSnapshot.alerts = alerts;
    snapshots.set(task.id, taskSnapshot);
  }

  const snapshot: DagSnapshot = {
    id: dag.id,
    description: dag.description ?? '',
    params: dag.params ?? {},
    maxActiveTasks: dag.maxActiveTasks ?? DEFAULT_MAX_ACTIVE_TASKS,
    tasks: topologicalOrder(dagLabel, snapshots),
  };
  const alerts = runAlerts(dag, dagLabel);
  if (alerts) snapshot.alerts = alerts;
  if (dag.schedule) {
    snapshot.schedule = dag.schedule.cron
      ? { cron: dag.schedule.cron }
      : { everyMs: definitionDuration(dag.schedule.every!, `${dagLabel}: schedule.every`) };
  }
  deepFreeze(snapshot);
  if (dag.validateParams) registerParamsValidator(snapshot, dag.validateParams);
  if (dag.summary) registerSummary(snapshot, dag.summary);
  return snapshot;
}

/** Sensors and pools apply to one task instance: not to mapped tasks, and not together with a lock. */
function checkSensorAndPool(task: TaskDefinition, label: string): void {
  const fail = (message: string) => {
    throw new DagDefinitionError(`${label}: ${message}`);
  };
  if (task.poolSlots !== undefined && task.pool === undefined) fail('poolSlots needs a pool');
  if (task.pool !== undefined && task.map) fail('a mapped task cannot take a pool (pools apply to unmapped tasks)');
  if (task.pool !== undefined && task.exclusiveBy !== undefined) fail('a task cannot have both a pool and exclusiveBy');
  if (!task.sensor) return;
  if (task.map) fail('a mapped task cannot be a sensor');
  if (task.branch) fail('a branch task cannot be a sensor');
  if (task.pool !== undefined || task.exclusiveBy !== undefined) {
    fail('a sensor cannot take a pool or exclusiveBy (it holds nothing while it waits)');
  }
}

/** A local activity never reaches a task queue or the server's heartbeat tracking: options that need them are errors. */
function checkLocalActivity(task: TaskDefinition, snapshot: TaskSnapshot, label: string): void {
  const fromDefaults = (key: keyof TaskOptions) => (task[key] === undefined ? " (from the DAG's defaults)" : '');
  const conflicts = [
    snapshot.heartbeatTimeoutMs !== undefined && `heartbeatTimeout${fromDefaults('heartbeatTimeout')}`,
    snapshot.taskQueue !== undefined && `taskQueue${fromDefaults('taskQueue')}`,
    task.preferWorkerOf !== undefined && 'preferWorkerOf',
    task.sensor !== undefined && 'sensor',
  ].filter((c): c is string => typeof c === 'string');
  if (conflicts.length) {
    throw new DagDefinitionError(
      `${label}: a localActivity task runs on the runner's worker and cannot heartbeat to the server, so it cannot take ${conflicts.join(', ')}`,
    );
  }
}

/** A duration of the definition, or a `DagDefinitionError` naming where it is (`label`). */
function definitionDuration(value: NonNullable<TaskOptions['retryDelay']>, label: string): number {
  try {
    return durationToMs(value, label);
  } catch (cause) {
    throw new DagDefinitionError((cause as Error).message, { cause });
  }
}

function snapshotTask(
  task: TaskDefinition,
  upstream: string[],
  defaults: TaskOptions,
  maxActiveTasks: number,
  label: string,
): TaskSnapshot {
  const option = <K extends keyof TaskOptions>(key: K): TaskOptions[K] => task[key] ?? defaults[key];
  const ms = (key: 'retryDelay' | 'maxRetryDelay' | 'executionTimeout' | 'heartbeatTimeout', fallback?: number) => {
    const value = option(key);
    if (value === undefined) return fallback;
    try {
      return durationToMs(value, key);
    } catch (cause) {
      throw new DagDefinitionError(`${label}: ${(cause as Error).message}`, { cause });
    }
  };
  const snapshot: TaskSnapshot = {
    id: task.id,
    activity: task.activity,
    upstream,
    triggerRule: task.triggerRule ?? 'all_success',
    retry: {
      maxAttempts: (option('retries') ?? 0) + 1,
      initialDelayMs: ms('retryDelay', 1_000)!,
      backoffCoefficient: option('retryBackoff') ?? 2,
      maxDelayMs: ms('maxRetryDelay', 300_000)!,
    },
    executionTimeoutMs: ms('executionTimeout', 3_600_000)!,
    branch: task.branch ?? false,
  };
  if (snapshot.executionTimeoutMs <= 0) throw new DagDefinitionError(`${label}: executionTimeout must be positive`);
  const heartbeatTimeoutMs = ms('heartbeatTimeout');
  if (heartbeatTimeoutMs !== undefined) snapshot.heartbeatTimeoutMs = heartbeatTimeoutMs;
  const taskQueue = option('taskQueue');
  if (taskQueue !== undefined) snapshot.taskQueue = taskQueue;
  if (task.description !== undefined) snapshot.description = task.description;
  if (task.exclusiveBy !== undefined) snapshot.exclusiveBy = task.exclusiveBy;
  if (task.preferWorkerOf !== undefined) snapshot.preferWorkerOf = task.preferWorkerOf;
  if (task.sensor) {
    const sensorMs = (key: 'every' | 'timeout') => {
      let value: number;
      try {
        value = durationToMs(task.sensor![key], `sensor.${key}`);
      } catch (cause) {
        throw new DagDefinitionError(`${label}: ${(cause as Error).message}`, { cause });
      }
      if (value <= 0) throw new DagDefinitionError(`${label}: sensor.${key} must be positive`);
      return value;
    };
    snapshot.sensor = { everyMs: sensorMs('every'), timeoutMs: sensorMs('timeout'), softFail: !!task.sensor.softFail };
  }
  if (task.pool !== undefined) snapshot.pool = { name: task.pool, slots: task.poolSlots ?? 1 };
  if (task.localActivity) {
    checkLocalActivity(task, snapshot, label);
    snapshot.localActivity = true;
  }
  if (task.map) {
    snapshot.map = { over: task.map.over, maxActive: Math.min(task.map.maxActive ?? maxActiveTasks, maxActiveTasks) };
    if (task.map.field !== undefined) snapshot.map.field = task.map.field;
  }
  return snapshot;
}

/** Kahn's algorithm, keeping declaration order among tasks that are ready together. */
function topologicalOrder(dagLabel: string, tasks: Map<string, TaskSnapshot>): TaskSnapshot[] {
  const remaining = new Map([...tasks.values()].map((t) => [t.id, new Set(t.upstream)]));
  const ordered: TaskSnapshot[] = [];
  while (remaining.size > 0) {
    const ready = [...remaining].filter(([, ups]) => ups.size === 0).map(([id]) => id);
    if (ready.length === 0) {
      const cycle = findCycle(remaining);
      throw new DagDefinitionError(`${dagLabel}: the tasks form a cycle: ${cycle.join(' -> ')}`);
    }
    for (const id of ready) {
      remaining.delete(id);
      ordered.push(tasks.get(id)!);
      for (const ups of remaining.values()) ups.delete(id);
    }
  }
  return ordered;
}

function findCycle(graph: Map<string, Set<string>>): string[] {
  const start = graph.keys().next().value!;
  const path: string[] = [];
  let node: string = start;
  while (!path.includes(node)) {
    path.push(node);
    node = graph.get(node)!.values().next().value!;
  }
  return [...path.slice(path.indexOf(node)), node].reverse();
}

function parseOrThrow<T>(schema: z.ZodType<T>, value: unknown, label: string): T {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const details = result.error.issues.map((issue) => {
    const where = issue.path.length ? `${issue.path.join('.')}: ` : '';
    return `${where}${issue.message}`;
  });
  throw new DagDefinitionError(`${label}: ${details.join('; ')}`, { cause: result.error });
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object') {
    for (const child of Object.values(value)) deepFreeze(child);
    Object.freeze(value);
  }
  return value;
}
