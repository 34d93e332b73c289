/** A run's params as a client starts it: checked against the DAG, with its location params made absolute. */
import path from 'node:path';
import { resolveParams } from '../core/params';
import type { DagSnapshot, Json } from '../core/types';

/**
 * `resolveParams` with every `location` param given as a relative local path made absolute against this process's
 * folder: `-p output=lake` means the `lake` beside the user who typed it, not beside whichever worker runs the
 * task, and the run records the absolute path. Made absolute first, so the DAG's `validateParams` (e.g. "input and
 * output must not overlap") compares the places themselves.
 */
export function resolveRunParams(dag: DagSnapshot, given: Record<string, unknown>): Record<string, Json> {
  const absolute = (values: Record<string, unknown>) => {
    const out = { ...values };
    for (const [name, spec] of Object.entries(dag.params)) {
      const value = out[name];
      if (spec.type !== 'string' || !spec.location || typeof value !== 'string' || value === '') continue;
      if (/^[a-z][a-z0-9+.-]*:\/\//i.test(value) || path.isAbsolute(value)) continue;
      out[name] = path.resolve(value);
    }
    return out;
  };
  // Again after: a default may be relative too.
  return absolute(resolveParams(dag, absolute(given))) as Record<string, Json>;
}
