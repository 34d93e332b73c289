/** The framework's public API: declare DAGs, and the glossary of types (see types.ts). */
export { defineDag } from './dag';
export {
  DagDefinitionError,
  InvalidFieldError,
  NonRetryableTaskError,
  ParamValidationError,
  TempoflowError,
  UnknownDagError,
} from './errors';
export { resolveParams } from './params';
export { decideTrigger } from './trigger-rules';
export type { TriggerDecision } from './trigger-rules';
export { DAG_ID, DAG_RUN_STATE, LOGICAL_DATE } from './search-attributes';
export { isDagRunState, runStateOf } from './run-states';
export { DAG_RUN_STATES, FINISHED_DAG_RUN_STATES, RUN_STATES, TASK_STATES, TRIGGER_RULES } from './types';
export type * from './types';
