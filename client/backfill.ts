import { randomUUID } from 'node:crypto';
import type { Client, WorkflowExecutionInfo, WorkflowHandle } from '@temporalio/client';
import { InvalidFieldError, TempoflowError } from '../core/errors';
import { dagTiming, intervalsBetween } from '../core/schedule';
import { DAG_ID } from '../core/search-attributes';
import type { DagSnapshot, DataInterval } from '../core/types';
import type { backfill, BackfillInput, BackfillStatus, Reprocess } from '../workflows/backfill';
import { BACKFILL_WORKFLOW, backfillStatusQuery } from '../workflows/definitions';
import { dagRunId, normalizeInstant } from './runs';
import { resolveRunParams } from './run-params';

export const REPROCESS_CHOICES: readonly Reprocess[] = ['none', 'failed', 'completed'];

export interface BackfillOptions {
  from: string;
  to: string;
  maxActive?: number;
  reprocess?: Reprocess;
  params?: Record<string, unknown>;
  taskQueue: string;
  /** Runs per workflow execution before it continues as new (default `RUNS_PER_EXECUTION`; for tests). */
  runsPerExecution?: number;
}

export interface PlannedRun {
  runId: string;
  logicalDate: string;
  dataInterval: DataInterval;
}

/** The runs a backfill would start: one per interval of the DAG's schedule starting in [from, to]. */
export function planBackfill(dag: DagSnapshot, from: string, to: string): PlannedRun[] {
  const timing = dagTiming(dag);
  if (!timing) throw new TempoflowError(`DAG '${dag.id}' has no schedule, so it has no intervals to backfill`);
  const start = new Date(normalizeInstant(from, 'from'));
  const end = new Date(normalizeInstant(to, 'to'));
  if (start > end)
    throw new InvalidFieldError('from', (name) => `${name('from')} ${from} is after ${name('to')} ${to}`);
  return intervalsBetween(timing, start, end).map((dataInterval) => ({
    runId: dagRunId(dag.id, dataInterval.end),
    logicalDate: dataInterval.end,
    dataInterval,
  }));
}

export async function startBackfill(
  client: Client,
  dag: DagSnapshot,
  options: BackfillOptions,
): Promise<{ handle: WorkflowHandle<typeof backfill>; backfillId: string; planned: PlannedRun[] }> {
  const params = resolveRunParams(dag, options.params ?? {});
  const planned = planBackfill(dag, options.from, options.to);
  if (planned.length === 0)
    throw new TempoflowError(`no intervals of DAG '${dag.id}' start between ${options.from} and ${options.to}`);
  const maxActive = options.maxActive ?? 4;
  if (!Number.isInteger(maxActive) || maxActive < 1)
    throw new InvalidFieldError('maxActive', `must be a positive integer, got ${maxActive}`);
  const input: BackfillInput = {
    dag,
    params,
    intervals: planned.map((p) => p.dataInterval),
    maxActive,
    reprocess: options.reprocess ?? 'none',
    taskQueue: options.taskQueue,
    ...(options.runsPerExecution !== undefined ? { runsPerExecution: options.runsPerExecution } : {}),
  };
  const backfillId = `backfill__${dag.id}__${randomUUID().slice(0, 8)}`;
  const handle = await client.workflow.start<typeof backfill>(BACKFILL_WORKFLOW, {
    workflowId: backfillId,
    taskQueue: options.taskQueue,
    args: [input],
    staticSummary: `backfill ${dag.id} from ${options.from} to ${options.to} (${planned.length} runs, ${maxActive} at a time)`,
    typedSearchAttributes: [{ key: DAG_ID, value: dag.id }],
  });
  return { handle, backfillId, planned };
}

export async function getBackfillStatus(client: Client, backfillId: string): Promise<BackfillStatus> {
  return client.workflow.getHandle(backfillId).query(backfillStatusQuery);
}

export async function listBackfills(client: Client, dagId?: string) {
  const clauses = [`WorkflowType = '${BACKFILL_WORKFLOW}'`];
  if (dagId) clauses.push(`DagId = '${dagId.replace(/'/g, '')}'`);
  // A backfill continues as new every so many runs: one row per backfill, started when its first execution
  // started, with the status of its latest execution.
  const byId = new Map<string, { first: WorkflowExecutionInfo; last: WorkflowExecutionInfo }>();
  for await (const wf of client.workflow.list({ query: clauses.join(' AND ') })) {
    const seen = byId.get(wf.workflowId);
    if (!seen && byId.size >= 100) continue;
    byId.set(wf.workflowId, {
      first: seen && seen.first.startTime <= wf.startTime ? seen.first : wf,
      last: seen && seen.last.startTime >= wf.startTime ? seen.last : wf,
    });
  }
  return [...byId.values()].map(({ first, last }) => ({
    backfillId: last.workflowId,
    dagId: last.typedSearchAttributes.get(DAG_ID) ?? '',
    status: last.status.name,
    startTime: first.startTime.toISOString(),
    closeTime: last.closeTime?.toISOString(),
  }));
}
