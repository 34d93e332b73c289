/**
 * `tempoflow/testing`: test a DAG against a real, throwaway Temporal server with an in-process worker, and call
 * a task activity with a made-up task context.
 *
 *   const status = await runDag(helloDag, { params: { name: 'Ada' }, activities: createActivities() });
 *   assert.equal(status.state, 'success');
 *   assert.equal(await runActivity(activities.greet, { params: { name: 'Ada' } }), 'Hello, Ada!');
 */
import { randomUUID } from 'node:crypto';
import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';
import { MockActivityEnvironment, TestWorkflowEnvironment } from '@temporalio/testing';
import type { Client } from '@temporalio/client';
import { SEARCH_ATTRIBUTES } from '../core/search-attributes';
import type {
  ActivityRecord,
  DagRunStatus,
  DagSnapshot,
  DataInterval,
  ProjectProblems,
  TaskContext,
} from '../core/types';
import { triggerDagRun, waitForRun } from '../client/runs';
import { findTemporalCli } from '../services/temporal-cli';
import { createTempoflowWorker } from '../worker/create-worker';
import { installRuntime } from '../worker/main';

/**
 * Present (and required) only when `dag`'s tasks do not fit `activities`: the compile error names the task and
 * the activity, as `defineProject` does.
 */
export type ActivitiesCheck<D extends DagSnapshot, A> = [ProjectProblems<[D], A>] extends [never]
  ? unknown
  : { '~problems': ProjectProblems<[D], A> };

export interface RunDagOptions<A extends object = object> {
  /** The run's params (validated against the DAG's specs, as a trigger would). */
  params?: Record<string, unknown>;
  /** The task activities the DAG's tasks name (a record or an interface of activity functions). */
  activities: A;
  dataInterval?: DataInterval | null;
  /** ISO 8601; default: the interval's end, else now. */
  logicalDate?: string;
}

/** A throwaway Temporal server for a test file; `runDag` as often as needed, then `teardown()`. */
export interface TempoflowTestEnvironment {
  /** A client of the test server (e.g. to query a run). */
  readonly client: Client;
  /** Runs `dag` to its end on a fresh task queue with an in-process worker; resolves with its final status. */
  runDag<D extends DagSnapshot, A extends object>(
    dag: D,
    options: RunDagOptions<A> & ActivitiesCheck<D, A>,
  ): Promise<DagRunStatus>;
  /** Stops the server. */
  teardown(): Promise<void>;
}

/**
 * Starts a local Temporal server (`temporal server start-dev`) with tempoflow's search attributes. The Temporal
 * CLI is the one tempoflow finds: $TEMPORAL_CLI_PATH, `temporal` on PATH, ~/.cache/tempoflow/bin; else the
 * Temporal SDK downloads one (needs internet access).
 */
export async function createTestEnvironment(): Promise<TempoflowTestEnvironment> {
  quietRuntime();
  const cli = await findTemporalCli();
  const env = await TestWorkflowEnvironment.createLocal({
    server: {
      ip: '127.0.0.1',
      ...(cli ? { executable: { type: 'existing-path' as const, path: cli } } : {}),
      searchAttributes: Object.entries(SEARCH_ATTRIBUTES).map(([name, type]) =>
        defineSearchAttributeKey(name, SearchAttributeType[type]),
      ),
      extraArgs: ['--log-level', 'error'],
    },
  });
  const namespace = env.namespace ?? 'default';
  return {
    client: env.client,
    async runDag(dag, options) {
      const taskQueue = `test-${randomUUID()}`;
      const worker = await createTempoflowWorker({
        connection: env.nativeConnection,
        namespace,
        taskQueue,
        dags: [dag],
        activities: options.activities as ActivityRecord,
        workerOptions: { shutdownGraceTime: '1s' },
      });
      return worker.runUntil(async () => {
        const run = await triggerDagRun(env.client, dag, {
          taskQueue,
          params: options.params ?? {},
          dataInterval: options.dataInterval ?? null,
          ...(options.logicalDate ? { logicalDate: options.logicalDate } : {}),
        });
        return waitForRun(run.handle);
      });
    },
    teardown: () => env.teardown(),
  };
}

/** Runs `dag` once on its own throwaway Temporal server (started and stopped here) and returns its final status. */
export async function runDag<D extends DagSnapshot, A extends object>(
  dag: D,
  options: RunDagOptions<A> & ActivitiesCheck<D, A>,
): Promise<DagRunStatus> {
  const env = await createTestEnvironment();
  try {
    return await env.runDag(dag, options);
  } finally {
    await env.teardown();
  }
}

/** A task context for calling an activity directly; every field has a plausible default. */
// C comes from where the context goes (the activity's parameter), not from `fields`, which only fill it in.
export function taskContext<C extends TaskContext<unknown, unknown, unknown> = TaskContext>(
  fields: NoInfer<Partial<C>> = {},
): C {
  const logicalDate = fields.logicalDate ?? new Date().toISOString();
  const dagId = fields.dagId ?? 'test_dag';
  return {
    dagId,
    runId: `${dagId}__${logicalDate}`,
    taskId: 'test_task',
    params: {},
    dataInterval: null,
    upstream: {},
    attempt: 1,
    ...fields,
    logicalDate,
  } as C;
}

/**
 * Calls a task activity with `taskContext(fields)` inside Temporal's mock activity environment, so activities
 * that heartbeat or read `Context.current()` work as on a worker.
 */
export async function runActivity<C extends TaskContext<unknown, unknown, unknown>, R>(
  activity: (ctx: C) => Promise<R>,
  fields: Partial<C> = {},
): Promise<R> {
  // A typed activity (`TaskContextOf`) gets its typed fields; the defaults fill in the rest.
  const ctx = taskContext<C>(fields);
  return new MockActivityEnvironment().run(activity, ctx);
}

/** Warnings and errors only; a Runtime the test installed itself is kept. */
function quietRuntime(): void {
  try {
    installRuntime('ERROR');
  } catch {
    // Installed already (by the test, or by an earlier Worker): keep it.
  }
}
