/** A run's params as a client starts it: checked against the DAG, with its location params made absolute. */
import path from 'node:path';
import { resolveParams } from '../core/params';
import type { DagSnapshot, Json } from '../core/types';

/**
 * `resolveParams`, then every `location` param given as a relative local path made absolute against this
 * process's folder: `-p output=lake` means the `lake` beside the user who typed it, not beside whichever worker
 * runs the task, and the run records the absolute path.
 */
export function resolveRunParams(dag: DagSnapshot, given: Record<string, unknown>): Record<string, Json> {
  const params = resolveParams(dag, given);
  for (const [name, spec] of Object.entries(dag.params)) {
    const value = params[name];
    if (spec.type !== 'string' || !spec.location || typeof value !== 'string' || value === '') continue;
    if (/^[a-z][a-z0-9+.-]*:\/\//i.test(value) || path.isAbsolute(value)) continue;
    params[name] = path.resolve(value);
  }
  return params;
}
