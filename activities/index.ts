/** Activity code: the task implementations that do I/O. Built from injected clients (`createActivities(deps)`). */
import type { TaskActivity } from '../core/types';
import { createExampleActivities } from './example';

// eslint-disable-next-line @typescript-eslint/no-empty-object-type
export interface ActivityDeps {}

export function createActivities(_deps: ActivityDeps = {}): Record<string, TaskActivity> {
  return {
    ...createExampleActivities(),
  };
}
