import { CancelledFailure, Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import { alertActivities, WEBHOOK_NOTIFIER } from '../core/alerts';
import { NonRetryableTaskError, TempoflowError } from '../core/errors';
import { checkOutputSize } from '../core/task-output';
import type { ActivityRecord, DagSnapshot, Json, TaskActivity, TaskContext } from '../core/types';
import type { TaskLogs } from './task-logs';
import { knownNames } from '../core/suggest';

/**
 * Checks that every task of every DAG names a registered activity, so a typo fails at worker start rather
 * than in the middle of a run.
 */
export function checkActivitiesCover(dags: readonly DagSnapshot[], activities: Record<string, unknown>): void {
  const registered = Object.keys(activities).filter((name) => typeof activities[name] === 'function');
  const unknown = (name: string) => `no activity named '${name}' is registered${knownNames(name, registered)}`;
  const missing = dags.flatMap((dag) => [
    ...dag.tasks
      .filter((task) => typeof activities[task.activity] !== 'function')
      .map((task) => `DAG '${dag.id}', task '${task.id}': ${unknown(task.activity)}`),
    ...alertActivities(dag)
      .filter(({ name }) => name !== WEBHOOK_NOTIFIER && typeof activities[name] !== 'function')
      .map(({ name, where }) => `${where}: ${unknown(name)}`),
  ]);
  if (missing.length) throw new TempoflowError(missing.join('\n'));
}

/**
 * Wraps task activities with what every task needs: the output size limit, and errors turned into Temporal
 * failures that keep their message and type (non-retryable ones stop the task's retries).
 */
export function wrapTaskActivities(
  activities: ActivityRecord,
  taskLogs?: TaskLogs,
  workerQueue?: string,
): Record<string, (ctx: TaskContext) => Promise<Json>> {
  return Object.fromEntries(
    Object.entries(activities).map(([name, run]) => {
      const attempt = async (ctx: TaskContext): Promise<Json> => {
        let output: Json;
        try {
          output = (await (run as TaskActivity)(workerQueue ? { ...ctx, workerQueue } : ctx)) ?? null;
        } catch (err) {
          throw toFailure(err);
        }
        const tooLarge = checkOutputSize(ctx.taskId, output);
        if (tooLarge) throw ApplicationFailure.nonRetryable(tooLarge.message, tooLarge.type);
        return output;
      };
      // With a log location, the attempt's log lines are kept (task-logs.ts).
      return [name, (ctx: TaskContext) => (taskLogs ? taskLogs.capture(ctx, () => attempt(ctx)) : attempt(ctx))];
    }),
  );
}

function toFailure(err: unknown): unknown {
  if (err instanceof ApplicationFailure || err instanceof CancelledFailure) return err;
  if (Context.current().cancellationSignal.aborted) return err;
  if (err instanceof NonRetryableTaskError) {
    return ApplicationFailure.create({ message: err.message, type: err.type, nonRetryable: true, cause: err });
  }
  if (err instanceof Error) return ApplicationFailure.create({ message: err.message, type: err.name, cause: err });
  return ApplicationFailure.create({ message: String(err) });
}
