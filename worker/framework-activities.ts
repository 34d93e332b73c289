import { Context } from '@temporalio/activity';
import { DAG_RUN_STATE } from '../core/search-attributes';
import { acquireLockSignal, RESOURCE_LOCK_WORKFLOW } from '../workflows/resource-lock';
import type { LockRequest, resourceLock } from '../workflows/resource-lock';

/** Activities of tempoflow itself (not of any DAG), used by the backfill and lock workflows. */
export function createFrameworkActivities() {
  return {
    /** Queues a lock request, starting the resource's lock workflow if it is not running. */
    async tempoflowRequestLock({
      lockId,
      request,
      taskQueue,
    }: {
      lockId: string;
      request: LockRequest;
      taskQueue: string;
    }) {
      await Context.current().client.workflow.signalWithStart<typeof resourceLock, [LockRequest]>(
        RESOURCE_LOCK_WORKFLOW,
        {
          workflowId: lockId,
          taskQueue,
          args: [[]],
          signal: acquireLockSignal,
          signalArgs: [request],
          staticSummary: `lock for ${lockId.replace(/^lock__/, '')}`,
        },
      );
    },
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
            description.status.name === 'RUNNING'
              ? 'running'
              : finished
                ? recorded
                : description.status.name.toLowerCase();
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
