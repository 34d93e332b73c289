/**
 * `tempoflow`: what a project's DAG, activity and project files import. The worker, the client library and
 * the test helpers are `tempoflow/worker`, `tempoflow/client` and `tempoflow/testing`.
 */
export { defineDag } from '../core/dag';
export { defineProject, ProjectError } from '../core/project';
export type {
  Project,
  ProjectActivityDeps,
  ProjectCommand,
  ProjectConfig,
  ProjectWorkerDefaults,
} from '../core/project';
export {
  DagDefinitionError,
  InvalidFieldError,
  NonRetryableTaskError,
  ParamValidationError,
  TempoflowError,
  UnknownDagError,
} from '../core/errors';
export { DAG_RUN_STATES, RUN_STATES, TASK_STATES, TRIGGER_RULES } from '../core/types';
export type * from '../core/types';
