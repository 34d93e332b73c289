import { sleep } from '@temporalio/activity';
import { NonRetryableTaskError } from '../core/errors';
import type { Json, TaskActivity, TaskContext } from '../core/types';

/**
 * Task code of the `example_fanout` DAG: the framework's own small example (no external services), showing a
 * mapped task, a branch and a retry.
 */
export function createExampleActivities() {
  return {
    /** Splits `params.count` numbers into one work item per number. */
    async examplePlan(ctx: TaskContext): Promise<Json> {
      const count = Number(ctx.params.count ?? 10);
      return Array.from({ length: count }, (_, i) => ({ n: i + 1 }));
    },
    /** Squares one item (a mapped task instance). */
    async exampleSquare(ctx: TaskContext): Promise<Json> {
      const { n } = ctx.item as { n: number };
      return n * n;
    },
    /** A flaky source that fails its first `params.flakyFailures` attempts, as a real API sometimes does. */
    async exampleFlakyFetch(ctx: TaskContext): Promise<Json> {
      const failures = Number(ctx.params.flakyFailures ?? 0);
      if (ctx.attempt <= failures) {
        throw new Error(`example source unavailable (attempt ${ctx.attempt} of a planned ${failures} failures)`);
      }
      await sleep(10);
      return { bonus: 100, attempt: ctx.attempt };
    },
    /** Chooses the report to run from the total (a branch task returns the downstream task ids to follow). */
    async exampleChooseReport(ctx: TaskContext): Promise<Json> {
      const squares = ctx.upstream.square as number[];
      const total = squares.reduce((a, b) => a + b, 0) + (ctx.upstream.flaky_fetch as { bonus: number }).bonus;
      const threshold = Number(ctx.params.threshold ?? 500);
      if (!Number.isFinite(total)) throw new NonRetryableTaskError('the squares did not add up to a number');
      return total > threshold ? 'report_big' : 'report_small';
    },
    async exampleReport(ctx: TaskContext): Promise<Json> {
      const squares = ctx.upstream.square as number[] | undefined;
      return { report: ctx.taskId, items: squares?.length ?? 0 };
    },
    async exampleSummary(ctx: TaskContext): Promise<Json> {
      const chosen = Object.entries(ctx.upstream).map(([task, out]) => ({ task, out }));
      return { chosen };
    },
  } satisfies Record<string, TaskActivity>;
}
