import { findDag } from '../core/project';
import type { DagSnapshot } from '../core/types';
import { exampleFanout } from './example';
import { sparkifyDag } from './sparkify';

/** Every DAG this repository ships; tempoflow.config.ts registers them. */
export const dags = [sparkifyDag, exampleFanout] as const;

export function getDag(id: string, registry: readonly DagSnapshot[] = dags): DagSnapshot {
  return findDag(registry, id);
}
