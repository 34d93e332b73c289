/** Shared set-up for tests that run DAGs: one workflow bundle per process, workers on unique task queues. */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { Client, Connection } from '@temporalio/client';
import { DefaultLogger, NativeConnection, Runtime } from '@temporalio/worker';
import type { Worker } from '@temporalio/worker';
import type { DagSnapshot, ActivityRecord } from '../core/types';
import { main } from '../client/cli';
import { bundleWorkflows, createTempoflowWorker } from '../worker/create-worker';
import { testServices } from './services';

let runtimeInstalled = false;
let bundle: Promise<{ code: string }> | undefined;

/** Bundling the workflow code takes seconds: do it once per test process. */
export function workflowBundle(): Promise<{ code: string }> {
  bundle ??= bundleWorkflows();
  return bundle;
}

export interface TestWorkerContext {
  client: Client;
  taskQueue: string;
  address: string;
  worker: Worker;
}

/** Runs `fn` while a worker for `dags` and `activities` polls a fresh task queue on the test server. */
export async function withTestWorker<T>(
  options: {
    dags: readonly DagSnapshot[];
    activities: ActivityRecord;
    maxConcurrentActivities?: number;
    /** Where the worker keeps task logs. */
    logLocation?: string;
    workflowStackTraceFrames?: number;
  },
  fn: (ctx: TestWorkerContext) => Promise<T>,
): Promise<T> {
  if (!runtimeInstalled) {
    Runtime.install({
      logger: new DefaultLogger('ERROR'),
      telemetryOptions: { logging: { filter: { core: 'ERROR', other: 'ERROR' } } },
    });
    runtimeInstalled = true;
  }
  const { temporal } = await testServices();
  const taskQueue = `test-${randomUUID()}`;
  const nativeConnection = await NativeConnection.connect({ address: temporal.address });
  const connection = await Connection.connect({ address: temporal.address });
  const client = new Client({ connection, namespace: temporal.namespace });
  try {
    const worker = await createTempoflowWorker({
      connection: nativeConnection,
      namespace: temporal.namespace,
      taskQueue,
      dags: options.dags,
      activities: options.activities,
      maxConcurrentActivities: options.maxConcurrentActivities ?? 20,
      ...(options.logLocation ? { logLocation: options.logLocation } : {}),
      ...(options.workflowStackTraceFrames !== undefined
        ? { workflowStackTraceFrames: options.workflowStackTraceFrames }
        : {}),
      workflowBundle: await workflowBundle(),
      workerOptions: { shutdownGraceTime: '1s' },
    });
    return await worker.runUntil(fn({ client, taskQueue, address: temporal.address, worker }));
  } finally {
    await connection.close();
    await nativeConnection.close();
  }
}

/** Starts a worker fixture (`test/fixtures/<file>`) in its own process; resolves once it says 'worker ready'. */
export function startWorkerProcess(fixture: string, env: NodeJS.ProcessEnv): Promise<ChildProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', join(import.meta.dirname, 'fixtures', fixture)], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  return new Promise((resolve, reject) => {
    child.stdout.on('data', (chunk: Buffer) => {
      if (chunk.toString().includes('worker ready')) resolve(child);
    });
    child.once('exit', (code) => reject(new Error(`worker process exited early with code ${code}`)));
  });
}

/** Runs the CLI in this process against the test Temporal server and returns its exit code and what it printed. */
export async function cliInProcess(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const { temporal } = await testServices();
  const capture = () => {
    const stream = new PassThrough();
    let text = '';
    stream.on('data', (chunk: Buffer) => (text += chunk.toString()));
    return { stream: stream as unknown as NodeJS.WriteStream, text: () => text };
  };
  const [out, err] = [capture(), capture()];
  const code = await main(['node', 'tempoflow', ...args], {
    stdout: out.stream,
    stderr: err.stream,
    env: { ...process.env, TEMPORAL_ADDRESS: temporal.address, TEMPORAL_NAMESPACE: temporal.namespace, NO_COLOR: '1' },
  });
  return { code, stdout: out.text(), stderr: err.text() };
}
