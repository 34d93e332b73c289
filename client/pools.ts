/** Named pools of slots shared by every run of every DAG (`pool: '<name>'` on a task): create, list, delete. */
import { WorkflowIdConflictPolicy, WorkflowNotFoundError, WorkflowUpdateFailedError } from '@temporalio/client';
import type { Client } from '@temporalio/client';
import { ID as POOL_NAME } from '../core/dag';
import { InvalidFieldError, TempoflowError } from '../core/errors';
import {
  configurePoolUpdate,
  deletePoolUpdate,
  poolStatusQuery,
  poolWorkflowId,
  RESOURCE_POOL_WORKFLOW,
} from '../workflows/resource-pool';
import type { PoolState, PoolStatus, resourcePool } from '../workflows/resource-pool';

export type { PoolStatus } from '../workflows/resource-pool';

/** A pool that does not exist, or one that cannot be deleted now. */
export class PoolError extends TempoflowError {
  override name = 'PoolError';
}

function checkName(name: string): void {
  if (!POOL_NAME.test(name)) {
    throw new InvalidFieldError('name', `'${name}' is not a pool name (a letter, then letters, digits, _ . -)`);
  }
}

/**
 * Creates the pool, or changes its size and description. Its workflow (`pool__<name>`) runs on `taskQueue`,
 * where a tempoflow worker must poll. Fewer slots than are held: holders keep theirs, new grants wait.
 */
export async function setPool(
  client: Client,
  name: string,
  options: { slots: number; description?: string; taskQueue: string },
): Promise<PoolStatus> {
  checkName(name);
  const { slots, description } = options;
  if (!Number.isInteger(slots) || slots < 1) {
    throw new InvalidFieldError('slots', `must be a positive integer (got ${String(slots)})`);
  }
  const initial: PoolState = {
    kind: 'pool',
    name,
    slots,
    ...(description !== undefined ? { description } : {}),
    waiting: [],
    holders: [],
  };
  const handle = await client.workflow.start<typeof resourcePool>(RESOURCE_POOL_WORKFLOW, {
    workflowId: poolWorkflowId(name),
    taskQueue: options.taskQueue,
    args: [initial],
    workflowIdConflictPolicy: WorkflowIdConflictPolicy.USE_EXISTING,
    staticSummary: `pool ${name}`,
  });
  return handle.executeUpdate(configurePoolUpdate, {
    args: [{ slots, ...(description !== undefined ? { description } : {}) }],
  });
}

/** Every pool with its slots, usage and queue (the running `pool__*` workflows). */
export async function listPools(client: Client): Promise<PoolStatus[]> {
  const query = `WorkflowType = '${RESOURCE_POOL_WORKFLOW}' AND ExecutionStatus = 'Running'`;
  const pools: PoolStatus[] = [];
  for await (const execution of client.workflow.list({ query })) {
    if (!execution.workflowId.startsWith(poolWorkflowId(''))) continue; // exclusiveBy locks
    const handle = client.workflow.getHandle(execution.workflowId);
    try {
      pools.push(await handle.query(poolStatusQuery));
    } catch (err) {
      // Deleted since it was listed (the visibility store lags behind): not a pool any more.
      if (err instanceof WorkflowNotFoundError) continue;
      const closed = await handle.describe().then(
        (d) => d.status.name !== 'RUNNING',
        () => false,
      );
      if (closed) continue;
      const name = execution.workflowId.slice(poolWorkflowId('').length);
      throw new PoolError(
        `pool '${name}' did not answer (is a tempoflow worker polling task queue '${execution.taskQueue}'?): ` +
          (err as Error).message,
        { cause: err },
      );
    }
  }
  return pools.sort((a, b) => a.name.localeCompare(b.name));
}

/** One pool's status; a `PoolError` when it does not exist. */
export async function getPool(client: Client, name: string): Promise<PoolStatus> {
  checkName(name);
  try {
    return await client.workflow.getHandle(poolWorkflowId(name)).query(poolStatusQuery);
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) throw new PoolError(`pool '${name}' does not exist`);
    throw err;
  }
}

/** Deletes a pool; refused (`PoolError`, naming the holders) while any slot is held or any task waits. */
export async function deletePool(client: Client, name: string): Promise<PoolStatus> {
  checkName(name);
  try {
    return await client.workflow.getHandle(poolWorkflowId(name)).executeUpdate(deletePoolUpdate);
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) throw new PoolError(`pool '${name}' does not exist`);
    if (err instanceof WorkflowUpdateFailedError) {
      throw new PoolError(err.cause?.message ?? `pool '${name}' cannot be deleted now`);
    }
    throw err;
  }
}
