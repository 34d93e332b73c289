import { UnknownDagError } from '../core/errors';
import type { DagSnapshot } from '../core/types';
import { exampleFanout } from './example';
import { sparkifyDag } from './sparkify';

/** Every DAG this project ships. Workers and the CLI know DAGs through this registry. */
export const dags: readonly DagSnapshot[] = [sparkifyDag, exampleFanout];

export function getDag(id: string, registry: readonly DagSnapshot[] = dags): DagSnapshot {
  const dag = registry.find((d) => d.id === id);
  if (!dag) {
    throw new UnknownDagError(`unknown DAG '${id}' (known: ${registry.map((d) => d.id).join(', ')})`);
  }
  return dag;
}
