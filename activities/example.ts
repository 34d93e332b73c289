import { sleep } from '@temporalio/activity';
import { NonRetryableTaskError } from '../core/errors';
import type { Json, TaskContextOf, TaskIdOf } from '../core/types';
import type { exampleFanout } from '../dags/example';

/** The context of each `example_fanout` task: params, upstream outputs and items typed from the DAG and below. */
type Context<T extends TaskIdOf<typeof exampleFanout>> = TaskContextOf<typeof exampleFanout, T, ExampleActivities>;

/**
 * Task code of the `example_fanout` DAG: the framework's own small example (no external services), showing a
 * mapped task, a branch and a retry. Each signature states its task's output, which its downstream tasks receive.
 */
export interface ExampleActivities {
  /** Splits `params.count` numbers into one work item per number. */
  examplePlan(ctx: Context<'plan'>): Promise<{ n: number }[]>;
  /** Squares one item (a mapped task instance). */
  exampleSquare(ctx: Context<'square'>): Promise<number>;
  /** A flaky source that fails its first `params.flakyFailures` attempts, as a real API sometimes does. */
  exampleFlakyFetch(ctx: Context<'flaky_fetch'>): Promise<{ bonus: number; attempt: number }>;
  /** Chooses the report to run from the total (a branch task returns the downstream task ids to follow). */
  exampleChooseReport(ctx: Context<'choose_report'>): Promise<'report_big' | 'report_small'>;
  /** Both report tasks run this; only `report_small` also receives the squares. */
  exampleReport(ctx: Context<'report_big'> | Context<'report_small'>): Promise<{ report: string; items: number }>;
  exampleSummary(ctx: Context<'summary'>): Promise<{ chosen: { task: string; out: Json }[] }>;
}

export function createExampleActivities(): ExampleActivities {
  return {
    async examplePlan(ctx) {
      return Array.from({ length: ctx.params.count }, (_, i) => ({ n: i + 1 }));
    },
    async exampleSquare(ctx) {
      return ctx.item.n * ctx.item.n;
    },
    async exampleFlakyFetch(ctx) {
      const failures = ctx.params.flakyFailures;
      if (ctx.attempt <= failures) {
        throw new Error(`example source unavailable (attempt ${ctx.attempt} of a planned ${failures} failures)`);
      }
      await sleep(10);
      return { bonus: 100, attempt: ctx.attempt };
    },
    async exampleChooseReport(ctx) {
      const total = ctx.upstream.square.reduce((a, b) => a + b, 0) + ctx.upstream.flaky_fetch.bonus;
      if (!Number.isFinite(total)) throw new NonRetryableTaskError('the squares did not add up to a number');
      return total > ctx.params.threshold ? 'report_big' : 'report_small';
    },
    async exampleReport(ctx) {
      const squares = 'square' in ctx.upstream ? ctx.upstream.square : undefined;
      return { report: ctx.taskId, items: squares?.length ?? 0 };
    },
    async exampleSummary(ctx) {
      const chosen = Object.entries(ctx.upstream).map(([task, out]) => ({ task, out: out ?? null }));
      return { chosen };
    },
  };
}
