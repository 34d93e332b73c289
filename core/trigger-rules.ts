import type { TaskState, TriggerRule } from './types';

/** What the runner does with a waiting task, given its upstream tasks' states. */
export type TriggerDecision = 'wait' | 'run' | 'skip' | 'upstream_failed';

/**
 * Airflow's trigger-rule semantics. Deterministic and pure: the runner workflow calls it.
 * `upstream` holds the effective states (a branch that did not choose this task counts as `skipped`).
 */
export function decideTrigger(rule: TriggerRule, upstream: readonly TaskState[]): TriggerDecision {
  const total = upstream.length;
  if (total === 0 || rule === 'always') return 'run';
  let success = 0;
  let failed = 0;
  let skipped = 0;
  for (const state of upstream) {
    if (state === 'success') success++;
    else if (state === 'failed' || state === 'upstream_failed') failed++;
    else if (state === 'skipped') skipped++;
  }
  const done = success + failed + skipped;
  switch (rule) {
    case 'all_success':
      if (failed > 0) return 'upstream_failed';
      if (skipped > 0) return 'skip';
      return success === total ? 'run' : 'wait';
    case 'all_failed':
      if (success > 0 || skipped > 0) return 'skip';
      return failed === total ? 'run' : 'wait';
    case 'all_done':
      return done === total ? 'run' : 'wait';
    case 'one_success':
      if (success > 0) return 'run';
      if (done < total) return 'wait';
      return failed > 0 ? 'upstream_failed' : 'skip';
    case 'one_failed':
      if (failed > 0) return 'run';
      return done === total ? 'skip' : 'wait';
    case 'none_failed':
      if (failed > 0) return 'upstream_failed';
      return done === total ? 'run' : 'wait';
    case 'none_failed_min_one_success':
      if (failed > 0) return 'upstream_failed';
      if (done < total) return 'wait';
      return success > 0 ? 'run' : 'skip';
  }
}
