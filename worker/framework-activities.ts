import { Context } from '@temporalio/activity';
import type { WorkflowExecutionInfo } from '@temporalio/client';
import { runStateOf } from '../core/run-states';
import { DAG_ID, DAG_RUN_STATE, LOGICAL_DATE } from '../core/search-attributes';
import type { RunState } from '../core/types';
import { DAG_RUN_WORKFLOW } from '../workflows/definitions';
import { ApplicationFailure } from '@temporalio/common';
import { acquireLockSignal } from '../workflows/resource-lock';
import type { LockRequest } from '../workflows/resource-lock';
import { POOL_NOT_FOUND, poolStatusQuery, RESOURCE_POOL_WORKFLOW } from '../workflows/resource-pool';
import type { PoolState, resourcePool } from '../workflows/resource-pool';

/** Activities of tempoflow itself (not of any DAG), used by the backfill and lock workflows. */
export function createFrameworkActivities() {
  return {
    /**
     * Queues a lock request, starting the resource's lock (a pool of one slot) if it is not running; or queues a
     * request for slots of a named pool, which must exist (`tempoflow pools set`), and tells the pool's usage then.
     */
    async tempoflowRequestLock({
      lockId,
      request,
      taskQueue,
      pool,
    }: {
      lockId: string;
      request: LockRequest;
      taskQueue: string;
      /** Set for a named pool: who asks, for the error when the pool does not exist. */
      pool?: { name: string; dagId: string; taskId: string };
    }): Promise<{ slots: number; used: number; waiting: number } | void> {
      const { client } = Context.current();
      if (pool) {
        const handle = client.workflow.getHandle(lockId);
        try {
          await handle.signal(acquireLockSignal, request);
        } catch (err) {
          if ((err as Error).name !== 'WorkflowNotFoundError') throw err;
          throw ApplicationFailure.create({
            type: POOL_NOT_FOUND,
            nonRetryable: true,
            message:
              `pool '${pool.name}' (task '${pool.taskId}' of DAG '${pool.dagId}') does not exist: create it with ` +
              `'tempoflow pools set ${pool.name} <slots>'`,
          });
        }
        // For the waiting task's status only: the pool's usage as the request joined it.
        const { slots, used, waiting } = await handle.query(poolStatusQuery);
        return { slots, used, waiting };
      }
      const name = lockId.replace(/^lock__/, '');
      const initial: PoolState = { kind: 'lock', name, slots: 1, waiting: [], holders: [] };
      await client.workflow.signalWithStart<typeof resourcePool, [LockRequest]>(RESOURCE_POOL_WORKFLOW, {
        workflowId: lockId,
        taskQueue,
        args: [initial],
        signal: acquireLockSignal,
        signalArgs: [request],
        staticSummary: `lock for ${name}`,
      });
    },
    /** The requests whose requesting run has closed (finished, failed, terminated) or no longer exists. */
    async tempoflowClosedRequesters({
      requesters,
    }: {
      requesters: { requestId: string; workflowId: string; runId?: string }[];
    }): Promise<string[]> {
      const { client } = Context.current();
      const closed: string[] = [];
      for (const { requestId, workflowId, runId } of requesters) {
        try {
          const description = await client.workflow.getHandle(workflowId, runId).describe();
          if (description.status.name !== 'RUNNING') closed.push(requestId);
        } catch (err) {
          if ((err as Error).name === 'WorkflowNotFoundError') closed.push(requestId);
          else throw err;
        }
      }
      return closed;
    },
    /**
     * The state of each existing run by id (see `runStateOf`); absent ids have no run. One
     * visibility query for a DAG's runs (by `DagId` and `LogicalDate` range), not one describe per run; a single id
     * is described (read-your-writes, where visibility may lag a moment behind).
     */
    async tempoflowFindRuns({
      runIds,
      dagId,
    }: {
      runIds: string[];
      dagId?: string;
    }): Promise<Record<string, RunState>> {
      const { client } = Context.current();
      if (runIds.length === 1) {
        const runId = runIds[0]!;
        try {
          const description = await client.workflow.getHandle(runId).describe();
          return { [runId]: stateOf(description) };
        } catch (err) {
          if ((err as Error).name !== 'WorkflowNotFoundError') throw err;
          return {};
        }
      }
      const wanted = new Set(runIds);
      // An id reused by several executions (a rerun): the latest one tells the run's state.
      const latest = new Map<string, WorkflowExecutionInfo>();
      for (const query of runQueries(runIds, dagId)) {
        for await (const execution of client.workflow.list({ query })) {
          if (!wanted.has(execution.workflowId)) continue;
          const seen = latest.get(execution.workflowId);
          if (!seen || execution.startTime > seen.startTime) latest.set(execution.workflowId, execution);
        }
        Context.current().heartbeat();
      }
      const found: Record<string, RunState> = {};
      for (const [runId, execution] of latest) found[runId] = stateOf(execution);
      return found;
    },
  };
}

export type FrameworkActivities = ReturnType<typeof createFrameworkActivities>;

function stateOf(execution: Pick<WorkflowExecutionInfo, 'status' | 'typedSearchAttributes'>): RunState {
  return runStateOf(execution.status.name, execution.typedSearchAttributes.get(DAG_RUN_STATE));
}

const quote = (value: string) => `'${value.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;

/** Visibility queries that find every run in `runIds`: one over the DAG's logical dates when all ids are the
 * DAG's (`<dag>__<logical date>`), else `WorkflowId IN (...)` in pages. */
export function runQueries(runIds: string[], dagId?: string): string[] {
  const runType = `WorkflowType = ${quote(DAG_RUN_WORKFLOW)}`;
  const prefix = dagId === undefined ? undefined : `${dagId}__`;
  const dates = prefix ? runIds.map((id) => (id.startsWith(prefix) ? id.slice(prefix.length) : '')) : [];
  if (prefix && dates.every((d) => !Number.isNaN(Date.parse(d)))) {
    const times = dates.map((d) => Date.parse(d));
    // A second of margin each side: visibility stores datetimes in its own format and precision (the dev server's
    // '...:00Z' sorts after '...:00.000Z'); the ids found are filtered to the wanted ones anyway.
    const from = new Date(Math.min(...times) - 1000).toISOString();
    const to = new Date(Math.max(...times) + 1000).toISOString();
    return [
      `${runType} AND ${DAG_ID.name} = ${quote(dagId!)} AND ${LOGICAL_DATE.name} BETWEEN ${quote(from)} AND ${quote(to)}`,
    ];
  }
  const pages: string[] = [];
  for (let i = 0; i < runIds.length; i += 100) {
    pages.push(
      `${runType} AND WorkflowId IN (${runIds
        .slice(i, i + 100)
        .map(quote)
        .join(', ')})`,
    );
  }
  return pages;
}
