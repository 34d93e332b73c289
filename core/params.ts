import { ParamValidationError } from './errors';
import type { DagDefinition, DagSnapshot, Json, ParamSpec } from './types';
import { knownNames } from './suggest';

type ParamsValidator = NonNullable<DagDefinition['validateParams']>;

/** Each defined DAG's `validateParams`, kept beside its snapshot: a function cannot travel in a run's input. */
const validators = new WeakMap<DagSnapshot, ParamsValidator>();

/** Called by `defineDag`. */
export function registerParamsValidator(dag: DagSnapshot, validate: ParamsValidator): void {
  validators.set(dag, validate);
}

/**
 * Checks `given` against the DAG's param specs and fills in defaults, then runs the DAG's `validateParams` (when
 * every param is fine). Values may be strings (from the CLI's `-p key=value`) and are coerced to the param's
 * type. Unknown params are refused: a typo must not silently run with a default.
 */
export function resolveParams(dag: DagSnapshot, given: Record<string, unknown>): Record<string, Json> {
  const problems: string[] = [];
  const resolved: Record<string, Json> = {};
  for (const name of Object.keys(given)) {
    if (!(name in dag.params)) {
      const known = Object.keys(dag.params);
      problems.push(`unknown param '${name}'${known.length ? knownNames(name, known) : ' (the DAG has no params)'}`);
    }
  }
  for (const [name, spec] of Object.entries(dag.params)) {
    const raw = given[name];
    if (raw === undefined || raw === '') {
      if (spec.default !== undefined) resolved[name] = spec.default;
      else if (spec.required)
        problems.push(`param '${name}' is required${spec.description ? ` (${spec.description})` : ''}`);
      continue;
    }
    const checked = checkParam(name, spec, raw);
    if (typeof checked === 'string') problems.push(checked);
    else resolved[name] = checked.value;
  }
  if (problems.length === 0) problems.push(...(validators.get(dag)?.(resolved) ?? []));
  if (problems.length) {
    throw new ParamValidationError(`DAG '${dag.id}': ${problems.join('; ')}`);
  }
  return resolved;
}

function checkParam(name: string, spec: ParamSpec, raw: unknown): { value: Json } | string {
  const shown = JSON.stringify(raw);
  switch (spec.type) {
    case 'string': {
      if (typeof raw !== 'string') return `param '${name}' must be a string, got ${shown}`;
      if (spec.enum && !spec.enum.includes(raw))
        return `param '${name}' must be one of ${spec.enum.join(', ')}, got ${shown}`;
      if (spec.pattern && !new RegExp(spec.pattern).test(raw))
        return `param '${name}' must match /${spec.pattern}/, got ${shown}`;
      return { value: raw };
    }
    case 'integer':
    case 'number': {
      const n = typeof raw === 'string' && raw.trim() !== '' ? Number(raw) : raw;
      if (typeof n !== 'number' || !Number.isFinite(n))
        return `param '${name}' must be ${spec.type === 'integer' ? 'an' : 'a'} ${spec.type}, got ${shown}`;
      if (spec.type === 'integer' && !Number.isInteger(n)) return `param '${name}' must be an integer, got ${shown}`;
      if (spec.min !== undefined && n < spec.min) return `param '${name}' must be at least ${spec.min}, got ${shown}`;
      if (spec.max !== undefined && n > spec.max) return `param '${name}' must be at most ${spec.max}, got ${shown}`;
      return { value: n };
    }
    case 'boolean': {
      if (typeof raw === 'boolean') return { value: raw };
      if (raw === 'true' || raw === 'false') return { value: raw === 'true' };
      return `param '${name}' must be true or false, got ${shown}`;
    }
  }
}
