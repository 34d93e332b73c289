import { Context } from '@temporalio/activity';
import { DAG_RUN_STATE } from '../core/search-attributes';

/** Activities of tempoflow itself (not of any DAG), used by the backfill and lock workflows. */
export function createFrameworkActivities() {
  return {
    /** The state of each existing run by id ('success', 'failed', 'running', ...); absent ids have no run. */
    async tempoflowFindRuns({ runIds }: { runIds: string[] }): Promise<Record<string, string>> {
      const { client } = Context.current();
      const found: Record<string, string> = {};
      for (const runId of runIds) {
        try {
          const description = await client.workflow.getHandle(runId).describe();
          const recorded = description.typedSearchAttributes.get(DAG_RUN_STATE);
          const finished = recorded === 'success' || recorded === 'failed' || recorded === 'cancelled';
          // A run that ended outside the runner's control (terminated, timed out) never recorded its state.
          found[runId] =
            description.status.name === 'RUNNING' ? 'running' : finished ? recorded : description.status.name.toLowerCase();
        } catch (err) {
          if ((err as Error).name !== 'WorkflowNotFoundError') throw err;
        }
        Context.current().heartbeat();
      }
      return found;
    },
  };
}

export type FrameworkActivities = ReturnType<typeof createFrameworkActivities>;
