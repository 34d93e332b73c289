import { randomUUID } from 'node:crypto';
import { WorkflowExecutionAlreadyStartedError, WorkflowFailedError } from '@temporalio/client';
import type { Client, WorkflowHandle } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { InvalidFieldError, TempoflowError } from '../core/errors';
import { dagRunId } from '../core/schedule';
import { runStateOf } from '../core/run-states';
import { DAG_ID, DAG_RUN_STATE, dagRunStateAttribute, LOGICAL_DATE } from '../core/search-attributes';
import type { DagRunInput, DagRunState, DagRunStatus, DagSnapshot, DataInterval, Json, RunState } from '../core/types';
import { DAG_RUN_FAILED, DAG_RUN_WORKFLOW, statusQuery } from '../workflows/definitions';
import type { dagRun } from '../workflows';
import { knownNames } from '../core/suggest';
import { resolveRunParams } from './run-params';

export interface TriggerOptions {
  params?: Record<string, unknown>;
  /** ISO 8601; default: the data interval's end, else now. */
  logicalDate?: string;
  dataInterval?: DataInterval | null;
  taskQueue: string;
  /** Override the run id (workflow id); by default it is derived from the DAG id and logical date. */
  runId?: string;
  /** Outputs of tasks to reuse instead of running them (`runs retry`). */
  reuse?: DagRunInput['reuse'];
  /** Start a new execution of an existing, finished run (`runs retry`). */
  rerun?: boolean;
}

export interface TriggeredRun {
  handle: WorkflowHandle<typeof dagRun>;
  runId: string;
  input: DagRunInput;
  /** False when a run of this DAG and logical date already existed and is reported instead. */
  created: boolean;
}

export { dagRunId };

/** The ISO 8601 instant of a date; an `InvalidFieldError` naming `field` when it is none. */
export function normalizeInstant(value: string, field: string): string {
  const date = new Date(value);
  if (Number.isNaN(date.getTime())) throw new InvalidFieldError(field, `'${value}' is not a date or ISO 8601 instant`);
  return date.toISOString();
}

/** Validates params (before anything starts) and starts a DAG run on the runner workflow. */
export async function triggerDagRun(client: Client, dag: DagSnapshot, options: TriggerOptions): Promise<TriggeredRun> {
  const params = resolveRunParams(dag, options.params ?? {});
  const dataInterval = options.dataInterval ?? null;
  if (dataInterval && !(new Date(dataInterval.start) < new Date(dataInterval.end))) {
    throw new InvalidFieldError(
      'dataInterval',
      `its start ${dataInterval.start} must be before its end ${dataInterval.end}`,
    );
  }
  const logicalDate = normalizeInstant(
    options.logicalDate ?? dataInterval?.end ?? new Date().toISOString(),
    'logicalDate',
  );
  const input: DagRunInput = {
    dag,
    params,
    logicalDate,
    dataInterval,
    ...(options.reuse ? { reuse: options.reuse } : {}),
  };
  const runId = options.runId ?? dagRunId(dag.id, logicalDate);
  try {
    const handle = await client.workflow.start<typeof dagRun>(DAG_RUN_WORKFLOW, {
      workflowId: runId,
      taskQueue: options.taskQueue,
      args: [input],
      // A failed run of the same logical date may be run again; a running or successful one is reported.
      workflowIdReusePolicy: options.rerun ? 'ALLOW_DUPLICATE' : 'ALLOW_DUPLICATE_FAILED_ONLY',
      staticSummary: `${dag.id} · logical date ${logicalDate}`,
      staticDetails: dataInterval ? `data interval ${dataInterval.start} to ${dataInterval.end}` : 'no data interval',
      typedSearchAttributes: [
        { key: DAG_ID, value: dag.id },
        { key: LOGICAL_DATE, value: new Date(logicalDate) },
        dagRunStateAttribute('queued'),
      ],
    });
    return { handle, runId, input, created: true };
  } catch (err) {
    if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
    return { handle: client.workflow.getHandle(runId), runId, input, created: false };
  }
}

/** Waits for a run and returns its final status; a failed run's status comes from the failure's details. */
export async function waitForRun(handle: WorkflowHandle<typeof dagRun>): Promise<DagRunStatus> {
  try {
    return await handle.result();
  } catch (err) {
    const status = statusFromFailure(err);
    if (status) return status;
    if (err instanceof WorkflowFailedError && err.cause?.name === 'CancelledFailure') {
      return await handle.query(statusQuery);
    }
    throw err;
  }
}

export function statusFromFailure(err: unknown): DagRunStatus | undefined {
  if (!(err instanceof WorkflowFailedError)) return undefined;
  const cause = err.cause;
  if (cause instanceof ApplicationFailure && cause.type === DAG_RUN_FAILED) {
    return cause.details?.[0] as DagRunStatus | undefined;
  }
  return undefined;
}

/** Live or final status of a run (needs a worker for runs that are not finished successfully). */
export async function getRunStatus(client: Client, runId: string): Promise<DagRunStatus> {
  const handle = client.workflow.getHandle<typeof dagRun>(runId);
  const description = await handle.describe();
  if (description.status.name === 'COMPLETED') return handle.result();
  if (description.status.name === 'FAILED') {
    try {
      await handle.result();
    } catch (err) {
      const status = statusFromFailure(err);
      if (status) return status;
    }
  }
  return handle.query(statusQuery);
}

export interface RunListing {
  runId: string;
  dagId: string;
  state: RunState;
  logicalDate?: string;
  startTime: string;
  closeTime?: string;
  workflowStatus: string;
}

/** Runs found through the search attributes (the same query the Web UI takes). */
export async function listRuns(
  client: Client,
  filter: { dagId?: string; state?: DagRunState; limit?: number } = {},
): Promise<RunListing[]> {
  const clauses = [`WorkflowType = '${DAG_RUN_WORKFLOW}'`];
  if (filter.dagId) clauses.push(`DagId = '${filter.dagId.replace(/'/g, '')}'`);
  if (filter.state) clauses.push(`DagRunState = '${filter.state.replace(/'/g, '')}'`);
  const runs: RunListing[] = [];
  for await (const wf of client.workflow.list({ query: clauses.join(' AND ') })) {
    const attrs = wf.typedSearchAttributes;
    runs.push({
      runId: wf.workflowId,
      dagId: attrs.get(DAG_ID) ?? '',
      state: runStateOf(wf.status.name, attrs.get(DAG_RUN_STATE)),
      logicalDate: attrs.get(LOGICAL_DATE)?.toISOString(),
      startTime: wf.startTime.toISOString(),
      closeTime: wf.closeTime?.toISOString(),
      workflowStatus: wf.status.name,
    });
    if (runs.length >= (filter.limit ?? 100)) break;
  }
  return runs;
}

export function uniqueRunSuffix(): string {
  return randomUUID().slice(0, 8);
}

/**
 * The input a run was started with (its DAG snapshot, params and dates): the first event of its history, read
 * as one page of one event however long the run.
 */
export async function getRunInput(client: Client, runId: string): Promise<DagRunInput> {
  const { history } = await client.workflowService.getWorkflowExecutionHistory({
    namespace: client.options.namespace,
    execution: { workflowId: runId },
    maximumPageSize: 1,
  });
  const started = history?.events?.[0]?.workflowExecutionStartedEventAttributes;
  const payload = started?.input?.payloads?.[0];
  if (!payload) throw new TempoflowError(`run '${runId}' has no recorded input: is it a tempoflow run?`);
  return client.options.loadedDataConverter.payloadConverter.fromPayload<DagRunInput>(payload);
}

/**
 * Runs the failed (or the named) tasks of a finished run again, with everything downstream of them, reusing
 * the outputs of the tasks that succeeded (Airflow's "clear failed and downstream"). The new execution keeps
 * the run id, DAG snapshot, params and dates of the original.
 */
export async function retryRun(
  client: Client,
  runId: string,
  options: { tasks?: string[]; taskQueue: string },
): Promise<TriggeredRun & { rerun: string[] }> {
  const status = await getRunStatus(client, runId);
  if (status.state === 'running')
    throw new TempoflowError(`run '${runId}' is still running: cancel it or wait for it to end`);
  const input = await getRunInput(client, runId);
  const dag = input.dag;
  for (const task of options.tasks ?? []) {
    if (!dag.tasks.some((t) => t.id === task)) {
      const known = dag.tasks.map((t) => t.id);
      throw new TempoflowError(`DAG '${dag.id}' has no task '${task}'${knownNames(task, known)}`);
    }
  }
  const seeds = options.tasks?.length
    ? options.tasks
    : status.tasks.filter((t) => t.state !== 'success' && t.state !== 'skipped').map((t) => t.taskId);
  if (seeds.length === 0)
    throw new InvalidFieldError(
      'tasks',
      (name) => `run '${runId}' has no failed tasks to retry: name the tasks with ${name('tasks')}`,
    );
  const rerun = new Set(seeds);
  for (const task of dag.tasks) if (task.upstream.some((up) => rerun.has(up))) rerun.add(task.id);
  const reuse: Record<string, Json> = {};
  for (const task of status.tasks) {
    if (task.state === 'success' && !rerun.has(task.taskId)) reuse[task.taskId] = status.outputs[task.taskId] ?? null;
  }
  const run = await triggerDagRun(client, dag, {
    params: input.params,
    logicalDate: status.logicalDate,
    dataInterval: status.dataInterval,
    taskQueue: options.taskQueue,
    runId,
    reuse,
    rerun: true,
  });
  return { ...run, rerun: dag.tasks.map((t) => t.id).filter((id) => rerun.has(id)) };
}
