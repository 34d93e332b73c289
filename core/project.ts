/**
 * A tempoflow project: the DAGs and task activities of one code base, declared in its `tempoflow.config.ts`
 * with `defineProject`. The CLI and the worker load that file (worker/load-project.ts); the framework itself
 * knows no DAG and no activity.
 */
import type { Command } from 'commander';
import type { CliContext } from '../client/context';
import type { DuckDbSettings, WorkerSettingsOverrides } from '../worker/settings';
import { TempoflowError, UnknownDagError } from './errors';
import type { ActivityRecord, DagSnapshot, ProjectProblems } from './types';
import { knownNames } from './suggest';

export type { ActivityRecord } from './types';

/** What the worker hands a project's `activities` factory: its resolved settings, never credentials. */
export interface ProjectActivityDeps {
  /** The worker's DuckDB settings (`--duckdb-*` flags, `TEMPOFLOW_DUCKDB_*`), for activities that open DuckDB. */
  duckdb: DuckDbSettings;
}

/** Worker defaults a project sets; a flag or an environment variable still wins over them. */
export type ProjectWorkerDefaults = Omit<WorkerSettingsOverrides, 'address' | 'namespace'>;

/** A CLI command a project adds (e.g. a data generator): registers itself on the `tempoflow` program. */
export interface ProjectCommand {
  register(program: Command, ctx: CliContext): void;
}

/**
 * What `tempoflow.config.ts` declares. Generic over the activities record `A`, so a project's activity names
 * and signatures stay known to the type checker.
 */
// `object`, not ActivityRecord: an interface of activities (which has no index signature) must fit too.
export interface ProjectConfig<A extends object = ActivityRecord> {
  /** Every DAG of the project (`defineDag` results). */
  dags: readonly DagSnapshot[];
  /**
   * Builds the task activities, once per worker process. May be async, so heavy modules (database drivers)
   * load only in workers, not in every CLI call: `activities: async (deps) => (await import('./activities')).create(deps)`.
   */
  activities: (deps: ProjectActivityDeps) => A | Promise<A>;
  /** Worker defaults (task queue, concurrency, DuckDB); flags and `TEMPOFLOW_*` variables override them. */
  worker?: ProjectWorkerDefaults;
  /** Extra CLI commands, listed after the built-in ones. */
  commands?: readonly ProjectCommand[];
}

/** A project as `defineProject` returns it (checked, frozen). */
export interface Project<A extends object = ActivityRecord> extends ProjectConfig<A> {
  readonly kind: 'tempoflow-project';
}

/** A project file is missing, cannot be loaded, or does not export a project. */
export class ProjectError extends TempoflowError {
  override name = 'ProjectError';
}

/**
 * Present (and required) only when the project's DAGs do not fit its activities: the compile error then names
 * each problem (`DAG 'etl', task 'load': activity 'laod' is not one of the project's activities`).
 */
type ProjectCheck<C> = C extends { dags: infer Dags extends readonly DagSnapshot[] }
  ? [ProjectProblems<Dags, ActivitiesOf<C>>] extends [never]
    ? unknown
    : { '~problems': ProjectProblems<Dags, ActivitiesOf<C>> }
  : unknown;

/** The activities record a project config's factory builds. */
type ActivitiesOf<C> = C extends { activities: (deps: never) => infer R } ? Awaited<R> : never;

/**
 * Declares a project; `export default defineProject({ ... })` in `tempoflow.config.ts`. The type checker checks
 * every task of every DAG against the activities: a misspelled activity, or an activity whose declared context
 * (`TaskContextOf`) does not match its task, is a compile error.
 *
 * @throws ProjectError when two DAGs share an id or a field has the wrong type.
 */
// Generic over the whole config (not the activities alone): TypeScript then infers the activities' type even from a
// factory whose `deps` parameter is typed by context, and checks the DAGs against it.
export function defineProject<C extends ProjectConfig<object>>(config: C & ProjectCheck<C>): Project<ActivitiesOf<C>> {
  if (!config || typeof config !== 'object') throw new ProjectError('defineProject expects an object');
  if (!Array.isArray(config.dags)) throw new ProjectError('defineProject: `dags` must be a list of defineDag results');
  if (typeof config.activities !== 'function') {
    throw new ProjectError('defineProject: `activities` must be a function `(deps) => ({ activityName: fn, ... })`');
  }
  const seen = new Set<string>();
  for (const dag of config.dags as readonly unknown[]) {
    const { id, tasks } = (dag ?? {}) as { id?: unknown; tasks?: unknown };
    if (typeof id !== 'string' || !Array.isArray(tasks)) {
      throw new ProjectError('defineProject: every entry of `dags` must be a defineDag result');
    }
    if (seen.has(id)) throw new ProjectError(`defineProject: two DAGs have the id '${id}'`);
    seen.add(id);
  }
  for (const command of config.commands ?? []) {
    if (typeof command?.register !== 'function') {
      throw new ProjectError('defineProject: every entry of `commands` must have a `register(program, ctx)` function');
    }
  }
  return Object.freeze({ ...config, kind: 'tempoflow-project' as const }) as Project<ActivitiesOf<C>>;
}

/** True for a value `defineProject` returned (also one from another copy of the tempoflow module). */
export function isProject(value: unknown): value is Project {
  return (value as { kind?: unknown } | null)?.kind === 'tempoflow-project';
}

/** The DAG with this id, or an UnknownDagError listing the known ones. */
export function findDag(dags: readonly DagSnapshot[], id: string): DagSnapshot {
  const dag = dags.find((d) => d.id === id);
  if (!dag) {
    const known = dags.map((d) => d.id);
    throw new UnknownDagError(
      `unknown DAG '${id}'${known.length ? knownNames(id, known) : ' (the project has no DAGs)'}`,
    );
  }
  return dag;
}

/** The task activities of a project, built with the worker's deps. */
export async function projectActivities(project: ProjectConfig, deps: ProjectActivityDeps): Promise<ActivityRecord> {
  const activities = await project.activities(deps);
  if (!activities || typeof activities !== 'object') {
    throw new ProjectError("the project's `activities` factory must return an object of activity functions");
  }
  return activities;
}
