/**
 * `npm run bench -- --framework`: the framework's own overhead (issue 10 item 6), with activities that do nothing,
 * on a Temporal dev server this bench starts and a worker in this process:
 *   (a) a 5,000-way map, 64 instances at once, must complete in ≤ 15 s: measured with the instances as activities
 *       (each through the server's task queue) and as local activities (`localActivity: true`, on the runner's worker);
 *   (b) a 100-task linear chain must complete in ≤ 5 s;
 *   no workflow history of either run (the runner and every child it starts, e.g. map batches) over 10,240 events.
 * Prints PASS/MISS per target (bench/targets.ts) and writes bench/results/framework.json.
 *   npm run bench -- --framework [--count 5000] [--max-active 64] [--chain 100] [--runs 1]
 *   --no-eager: without eager activity dispatch (to see what it saves)
 * The full `npm run bench` runs it too (frameworkTargets), so one run prints every issue-10 target.
 */
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Client, Connection } from '@temporalio/client';
import type { WorkflowHandle } from '@temporalio/client';
import { tsToMs } from '@temporalio/common/lib/time.js';
import type { temporal } from '@temporalio/proto';
import { NativeConnection } from '@temporalio/worker';
import { Command, InvalidArgumentError } from 'commander';
import { defineDag } from '../core/dag';
import type { DagSnapshot, Json, TaskContext } from '../core/types';
import { triggerDagRun, waitForRun } from '../client/runs';
import { startDevServer } from '../services/dev-server';
import { bundleWorkflows, createTempoflowWorker } from '../worker/create-worker';
import { installRuntime } from '../worker/main';
import { check, formatTargets, verdict, type TargetLine } from './targets';

const root = join(import.meta.dirname, '..');

/** Issue 10's limits for the framework bench. */
export const FRAMEWORK_LIMITS = { mapSeconds: 15, chainSeconds: 5, historyEvents: 10_240 } as const;

export interface FrameworkBenchOptions {
  /** Items of the map (default 5,000). */
  count?: number;
  /** Instances of the map at once (default 64): the DAG's `maxActiveTasks` and the map's `maxActive`. */
  maxActive?: number;
  /** Tasks of the chain (default 100). */
  chain?: number;
  /** Measured runs of each shape; the best wall time counts (default 1). */
  runs?: number;
  /** Eager activity dispatch on the server and the worker (default true). */
  eager?: boolean;
  log?: (line: string) => void;
}

/** The bench's DAGs: defined here, they exist for nothing else. */
export function frameworkDags(
  count: number,
  maxActive: number,
  chain: number,
): { map: DagSnapshot; localMap: DagSnapshot; chain: DagSnapshot } {
  const mapDag = (id: string, localActivity: boolean) =>
    defineDag({
      id,
      maxActiveTasks: maxActive,
      defaults: { retries: 0, executionTimeout: '1m' },
      params: { count: { type: 'integer', default: count, min: 0, max: 100_000 } },
      tasks: [
        { id: 'plan', activity: 'benchPlan' },
        {
          id: 'noop',
          activity: 'benchNoop',
          map: { over: 'plan', maxActive },
          ...(localActivity ? { localActivity } : {}),
        },
      ],
    });
  return {
    map: mapDag('bench_framework_map', false),
    localMap: mapDag('bench_framework_map_local', true),
    chain: defineDag({
      id: 'bench_framework_chain',
      defaults: { retries: 0, executionTimeout: '1m' },
      tasks: Array.from({ length: chain }, (_, i) => ({
        id: `t${i}`,
        activity: 'benchNoop',
        ...(i > 0 ? { upstream: [`t${i - 1}`] } : {}),
      })),
    }),
  };
}

export const frameworkActivities = {
  benchPlan: (ctx: TaskContext): Promise<Json> =>
    Promise.resolve(Array.from({ length: Number(ctx.params.count) }, (_, i) => i)),
  benchNoop: (): Promise<Json> => Promise.resolve(null),
};

/** One workflow's history as the bench reports it. */
export interface HistoryStats {
  workflowId: string;
  events: number;
  workflowTasks: number;
  /** Workflow tasks that failed or timed out (each one retried: wasted work). */
  workflowTaskProblems: number;
  activities: number;
  /** Local activities (one marker event each). */
  localActivities: number;
  children: number;
  /** Its first and last event, in seconds since the run's first event. */
  span: [number, number];
}

export interface RunMeasurement {
  seconds: number;
  /** CPU seconds (user + system) during the run: this process (client and worker) and the Temporal server. */
  cpuSeconds: { benchAndWorker: number; temporalServer: number };
  /** Every workflow of the run: the runner (and its continuations) and each child, with its event count. */
  histories: HistoryStats[];
  largestHistory: HistoryStats;
  /** Means over the run's activities: scheduled → started (dispatch) and started → closed (the no-op itself). */
  activityMs: { scheduleToStart: number; startToClose: number };
  /** Mean workflow task: scheduled → started (waiting for a poller) and started → completed (the worker's work). */
  workflowTaskMs: { scheduleToStart: number; startToComplete: number };
}

export interface FrameworkResult {
  count: number;
  maxActive: number;
  chain: number;
  eagerActivities: boolean;
  map: RunMeasurement;
  /** The same map with `localActivity: true`. */
  localMap: RunMeasurement;
  chainRun: RunMeasurement;
  targets: (TargetLine & { verdict: string })[];
}

/**
 * Runs the framework bench on a dev server of its own (a worker for its DAGs runs in this process meanwhile),
 * returns its target lines and writes bench/results/framework.json.
 */
export async function frameworkTargets(
  options: FrameworkBenchOptions = {},
): Promise<{ result: FrameworkResult; lines: TargetLine[] }> {
  const eager = options.eager ?? true;
  // Eager activity dispatch: the server hands the activities a workflow task schedules straight back to the
  // worker that completed it, in the same reply, when that worker has free slots (no matching, no extra
  // round trip). The dev server needs it switched on; Temporal Cloud has it on.
  const server = await startDevServer({
    headless: true,
    ...(eager ? { dynamicConfig: { 'system.enableActivityEagerExecution': true } } : {}),
  });
  try {
    return await runBench(server.address, server.namespace, eager, options);
  } finally {
    await server.stop();
  }
}

async function runBench(
  address: string,
  namespace: string,
  eager: boolean,
  options: FrameworkBenchOptions,
): Promise<{ result: FrameworkResult; lines: TargetLine[] }> {
  const count = options.count ?? 5_000;
  const maxActive = options.maxActive ?? 64;
  const chainLength = options.chain ?? 100;
  const runs = options.runs ?? 1;
  const log = options.log ?? ((line: string) => console.error(`[bench framework] ${line}`));
  const dags = frameworkDags(count, maxActive, chainLength);

  installRuntime('ERROR');
  log('bundling the workflow code');
  const workflowBundle = await bundleWorkflows();
  const nativeConnection = await NativeConnection.connect({ address });
  const connection = await Connection.connect({ address });
  const client = new Client({ connection, namespace });
  const taskQueue = `bench-framework-${Date.now()}`;
  try {
    const worker = await createTempoflowWorker({
      connection: nativeConnection,
      namespace,
      taskQueue,
      dags: [dags.map, dags.localMap, dags.chain],
      activities: frameworkActivities,
      // A worker sized for many small tasks: the map asks for `maxActive` instances at once (a worker with fewer
      // slots would be the limit, not the framework), and every free slot may take an activity eagerly.
      maxConcurrentActivities: Math.max(maxActive, 4),
      workflowBundle,
      workerOptions: {
        shutdownGraceTime: '1s',
        maxEagerActivityReservationsPerWorkflowTask: eager ? Math.max(maxActive, 4) : 0,
      },
    });
    const measure = async (dag: DagSnapshot, params: Record<string, unknown>, label: string, n: number) => {
      let best: RunMeasurement | undefined;
      for (let i = 0; i < n; i++) {
        const cpuBefore = { own: process.cpuUsage(), server: serverCpuSeconds(address) };
        const started = Date.now();
        const run = await triggerDagRun(client, dag, { taskQueue, params, runId: `${dag.id}-${label}-${started}` });
        const status = await waitForRun(run.handle);
        const ms = Date.now() - started;
        const own = process.cpuUsage(cpuBefore.own);
        const cpuSeconds = {
          benchAndWorker: +((own.user + own.system) / 1e6).toFixed(1),
          temporalServer: +(serverCpuSeconds(address) - cpuBefore.server).toFixed(1),
        };
        if (status.state !== 'success') {
          throw new Error(
            `${dag.id} (${label}) ended ${status.state}: ${JSON.stringify(status.tasks.filter((t) => t.error))}`,
          );
        }
        const measured = { ...(await measureRun(client, run.handle, ms)), cpuSeconds };
        log(
          `${label}: ${measured.seconds} s, largest history ${measured.largestHistory.events} events ` +
            `(${measured.histories.length} workflows)`,
        );
        if (!best || measured.seconds < best.seconds) best = measured;
      }
      return best!;
    };
    const { map, localMap, chainRun } = await worker.runUntil(async () => {
      // Warm-up: the worker's workflow threads load the bundle and the first connections open, as on a long-lived worker.
      log('warm-up: a 100-way map');
      await measure(dags.map, { count: 100 }, 'warm-up', 1);
      await measure(dags.localMap, { count: 100 }, 'warm-up', 1);
      log(`${count}-way map, ${maxActive} at once`);
      const map = await measure(dags.map, { count }, 'map', runs);
      log(`${count}-way map of local activities, ${maxActive} at once`);
      const localMap = await measure(dags.localMap, { count }, 'local map', runs);
      log(`${chainLength}-task chain`);
      const chainRun = await measure(dags.chain, {}, 'chain', runs);
      return { map, localMap, chainRun };
    });

    const largest = Math.max(map.largestHistory.events, localMap.largestHistory.events, chainRun.largestHistory.events);
    const lines = [
      check(
        `6 framework: ${count}-way map, ${maxActive} at once ≤ 15 s (activities)`,
        map.seconds,
        FRAMEWORK_LIMITS.mapSeconds,
        `${map.seconds.toFixed(1)} s`,
        '≤ 15 s',
      ),
      check(
        `6 framework: ${count}-way map, ${maxActive} at once ≤ 15 s (local activities)`,
        localMap.seconds,
        FRAMEWORK_LIMITS.mapSeconds,
        `${localMap.seconds.toFixed(1)} s`,
        '≤ 15 s',
      ),
      check(
        `6 framework: ${chainLength}-task chain ≤ 5 s`,
        chainRun.seconds,
        FRAMEWORK_LIMITS.chainSeconds,
        `${chainRun.seconds.toFixed(1)} s`,
        '≤ 5 s',
      ),
      check(
        '6 framework: largest workflow history ≤ 10,240 events',
        largest,
        FRAMEWORK_LIMITS.historyEvents,
        `${largest} events (${[map, localMap, chainRun].map((r) => r.largestHistory.workflowId).join(', ')})`,
        '≤ 10,240',
      ),
    ];
    const result: FrameworkResult = {
      count,
      maxActive,
      chain: chainLength,
      eagerActivities: eager,
      map,
      localMap,
      chainRun,
      targets: lines.map((l) => ({ ...l, verdict: verdict(l) })),
    };
    mkdirSync(join(root, 'bench', 'results'), { recursive: true });
    writeFileSync(join(root, 'bench', 'results', 'framework.json'), JSON.stringify(result, null, 2) + '\n');
    return { result, lines };
  } finally {
    await connection.close();
    await nativeConnection.close();
  }
}

type HistoryEvent = temporal.api.history.v1.IHistoryEvent;

/** Fetches the run's histories: the runner, its continuations (continue-as-new) and every child, recursively. */
async function measureRun(
  client: Client,
  handle: WorkflowHandle,
  ms: number,
): Promise<Omit<RunMeasurement, 'cpuSeconds'>> {
  const histories: (Omit<HistoryStats, 'span'> & { firstMs: number; lastMs: number })[] = [];
  const all: HistoryEvent[][] = [];
  const queue: { workflowId: string; runId?: string }[] = [{ workflowId: handle.workflowId }];
  // The first execution of the run: its id alone names the latest one, which may be a continuation.
  const first = (await client.workflow.getHandle(handle.workflowId).describe()).raw.workflowExecutionInfo;
  queue[0]!.runId = first?.firstRunId ?? undefined;
  while (queue.length) {
    const { workflowId, runId } = queue.shift()!;
    const events = (await client.workflow.getHandle(workflowId, runId).fetchHistory()).events ?? [];
    all.push(events);
    let activities = 0;
    let localActivities = 0;
    let children = 0;
    let workflowTasks = 0;
    let workflowTaskProblems = 0;
    for (const e of events) {
      if (e.workflowTaskFailedEventAttributes || e.workflowTaskTimedOutEventAttributes) workflowTaskProblems++;
      if (e.activityTaskScheduledEventAttributes) activities++;
      if (e.markerRecordedEventAttributes?.markerName === 'core_local_activity') localActivities++;
      if (e.workflowTaskCompletedEventAttributes) workflowTasks++;
      const child = e.childWorkflowExecutionStartedEventAttributes?.workflowExecution;
      if (child?.workflowId) {
        children++;
        queue.push({ workflowId: child.workflowId, runId: child.runId ?? undefined });
      }
      const next = e.workflowExecutionContinuedAsNewEventAttributes?.newExecutionRunId;
      if (next) queue.push({ workflowId, runId: next });
    }
    histories.push({
      workflowId,
      events: events.length,
      workflowTasks,
      workflowTaskProblems,
      activities,
      localActivities,
      children,
      firstMs: events.length ? eventMs(events[0]!) : 0,
      lastMs: events.length ? eventMs(events.at(-1)!) : 0,
    });
  }
  const origin = histories[0]!.firstMs;
  const stats: HistoryStats[] = histories.map(({ firstMs, lastMs, ...h }) => ({
    ...h,
    span: [+((firstMs - origin) / 1000).toFixed(2), +((lastMs - origin) / 1000).toFixed(2)],
  }));
  const largestHistory = stats.reduce((a, b) => (b.events > a.events ? b : a));
  return {
    seconds: +(ms / 1000).toFixed(2),
    histories: stats,
    largestHistory,
    activityMs: activityLatencies(all),
    workflowTaskMs: workflowTaskLatencies(all),
  };
}

/** CPU seconds the dev server on `address` (a `temporal` child of this process) has used, from /proc. */
function serverCpuSeconds(address: string): number {
  const port = address.split(':').at(-1);
  for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      const [head, rest] = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ');
      const fields = rest!.split(' ');
      if (!head!.endsWith('(temporal') || Number(fields[1]) !== process.pid) continue;
      const args = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
      if (args[args.indexOf('--port') + 1] !== port) continue;
      return (Number(fields[11]) + Number(fields[12])) / 100; // utime + stime, in clock ticks of 1/100 s
    } catch {
      // gone meanwhile
    }
  }
  return NaN;
}

const eventMs = (e: HistoryEvent) => tsToMs(e.eventTime);
const mean = (xs: number[]) => (xs.length ? +(xs.reduce((a, b) => a + b, 0) / xs.length).toFixed(1) : 0);

function activityLatencies(histories: HistoryEvent[][]): RunMeasurement['activityMs'] {
  const scheduleToStart: number[] = [];
  const startToClose: number[] = [];
  for (const events of histories) {
    const byId = new Map(events.map((e) => [Number(e.eventId), e]));
    for (const e of events) {
      const closed = e.activityTaskCompletedEventAttributes ?? e.activityTaskFailedEventAttributes;
      if (!closed) continue;
      const scheduled = byId.get(Number(closed.scheduledEventId));
      const started = byId.get(Number(closed.startedEventId));
      if (!scheduled || !started) continue;
      scheduleToStart.push(eventMs(started) - eventMs(scheduled));
      startToClose.push(eventMs(e) - eventMs(started));
    }
  }
  return { scheduleToStart: mean(scheduleToStart), startToClose: mean(startToClose) };
}

function workflowTaskLatencies(histories: HistoryEvent[][]): RunMeasurement['workflowTaskMs'] {
  const scheduleToStart: number[] = [];
  const startToComplete: number[] = [];
  for (const events of histories) {
    const byId = new Map(events.map((e) => [Number(e.eventId), e]));
    for (const e of events) {
      const done = e.workflowTaskCompletedEventAttributes;
      if (!done) continue;
      const scheduled = byId.get(Number(done.scheduledEventId));
      const started = byId.get(Number(done.startedEventId));
      if (!scheduled || !started) continue;
      scheduleToStart.push(eventMs(started) - eventMs(scheduled));
      startToComplete.push(eventMs(e) - eventMs(started));
    }
  }
  return { scheduleToStart: mean(scheduleToStart), startToComplete: mean(startToComplete) };
}

/** `npm run bench -- --framework`: starts a dev server, runs the bench, prints the targets. */
export async function frameworkBenchMain(argv: string[]): Promise<void> {
  const count = (v: string) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n <= 0) throw new InvalidArgumentError('must be a positive whole number');
    return n;
  };
  const opts = new Command('bench --framework')
    .option('--framework', 'the framework overhead bench (this mode)')
    .option('--count <n>', 'items of the map', count, 5_000)
    .option('--max-active <n>', 'map instances at once', count, 64)
    .option('--chain <n>', 'tasks of the chain', count, 100)
    .option('--runs <n>', 'measured runs of each; the best counts', count, 1)
    .option('--no-eager', 'without eager activity dispatch')
    .parse(argv)
    .opts<{ count: number; maxActive: number; chain: number; runs: number; eager: boolean }>();
  const { result, lines } = await frameworkTargets(opts);
  const row = (label: string, r: RunMeasurement) =>
    `${label}: ${r.seconds.toFixed(1)} s; largest history ${r.largestHistory.events} events of ${r.histories.length} workflows; ` +
    `activity schedule→start ${r.activityMs.scheduleToStart} ms, run ${r.activityMs.startToClose} ms; ` +
    `workflow task wait ${r.workflowTaskMs.scheduleToStart} ms, work ${r.workflowTaskMs.startToComplete} ms; ` +
    `CPU s: bench+worker ${r.cpuSeconds.benchAndWorker}, server ${r.cpuSeconds.temporalServer}`;
  console.log(
    `\nframework overhead (no-op activities, dev server, eager activities ${result.eagerActivities ? 'on' : 'off'})`,
  );
  console.log(row(`${result.count}-way map, ${result.maxActive} at once`, result.map));
  console.log(row(`${result.count}-way map of local activities, ${result.maxActive} at once`, result.localMap));
  console.log(row(`${result.chain}-task chain`, result.chainRun));
  console.log(`\nissue 10 targets:\n${formatTargets(lines)}`);
}

if (process.argv[1] && import.meta.filename === process.argv[1]) {
  await frameworkBenchMain(process.argv);
  process.exit(0);
}
