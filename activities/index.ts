/** Activity code: the task implementations that do I/O. Built from injected clients (`createActivities(deps)`). */
import { createExampleActivities } from './example';
import { createSparkifyActivities } from './sparkify/activities';
import type { DuckDbOptions } from '../worker/duckdb';
import { createStore } from '../storage/store';
import type { LeaseOptions } from '../storage/lease';
import type { Store } from '../storage/store';

export interface ActivityDeps {
  /** DuckDB resources per activity (memory limit, threads, spill directory). */
  duckdb?: DuckDbOptions;
  /** Object storage; default: S3 clients from the worker's own AWS environment, and local directories. */
  store?: Store;
  /** Timing of a lake's lease, held while publishing (default: a 2-minute lease, renewed while alive). */
  lakeLease?: LeaseOptions;
}

export function createActivities(deps: ActivityDeps = {}) {
  return {
    ...createExampleActivities(),
    ...createSparkifyActivities({
      store: deps.store ?? createStore(),
      duckdb: deps.duckdb ?? {},
      lakeLease: deps.lakeLease,
    }),
  };
}
