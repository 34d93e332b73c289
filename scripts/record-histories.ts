/**
 * Records the histories of representative runs as replay fixtures (test/fixtures/histories). Run it after an
 * intended change to the runner's behaviour, and commit the result: `npm run record-histories [-- <name>...]`
 * (only the named fixtures; all of them when none is named).
 */
import { writeFileSync } from 'node:fs';
import { historyToJSON } from '@temporalio/common/lib/proto-utils';
import { exampleFanout } from '../dags/example';
import { createExampleActivities } from '../activities/example';
import { triggerDagRun, waitForRun } from '../client/runs';
import type { DagSnapshot, Json } from '../core/types';
import type { Client } from '@temporalio/client';
import { DAG_RUN_WORKFLOW } from '../workflows/definitions';
import {
  createTestActivities,
  dailyDag,
  diamondDag,
  EventLog,
  exclusiveDag,
  mapDag,
  retryDag,
  triggerRuleDag,
} from '../test/fixtures/test-dags';
import { withTestWorker } from '../test/support';

const runs: { name: string; dag: DagSnapshot; params?: Record<string, Json>; scheduled?: true }[] = [
  { name: 'diamond', dag: diamondDag, params: { sleepMs: 10 } },
  { name: 'retry-and-non-retryable', dag: retryDag },
  { name: 'trigger-rules-mixed', dag: triggerRuleDag('mixed') },
  { name: 'map-inline', dag: mapDag, params: { count: 20 } },
  { name: 'map-batches', dag: mapDag, params: { count: 600 } },
  { name: 'example-fanout', dag: exampleFanout, params: { count: 12 } },
  { name: 'exclusive-by', dag: exclusiveDag },
  // What a schedule starts: the entry under the schedule's id, and the run it starts as a child.
  { name: 'scheduled', dag: dailyDag, params: { sleepMs: 10 }, scheduled: true },
];
const only = process.argv.slice(2);
const unknown = only.filter((name) => !runs.some((r) => r.name === name));
if (unknown.length)
  throw new Error(`no fixture named ${unknown.join(', ')} (known: ${runs.map((r) => r.name).join(', ')})`);

function save(name: string, workflowId: string, history: Parameters<typeof historyToJSON>[0]): void {
  const file = new URL(`../test/fixtures/histories/${name}.json`, import.meta.url);
  // Child workflow ids derive from the run id, so replay needs the original one.
  writeFileSync(file, `{"workflowId": ${JSON.stringify(workflowId)},\n"history": ${historyToJSON(history)}}\n`);
}

/** Starts the runner the way a schedule does (its entry, with `fromSchedule`), and records entry and child. */
async function recordScheduled(
  client: Client,
  taskQueue: string,
  name: string,
  dag: DagSnapshot,
  params: Record<string, Json>,
) {
  const entryId = `record-${name}-entry`;
  const handle = await client.workflow.start(DAG_RUN_WORKFLOW, {
    workflowId: entryId,
    taskQueue,
    args: [{ dag, params, logicalDate: '', dataInterval: null, fromSchedule: { cron: dag.schedule!.cron! } }],
  });
  const status = (await handle.result()) as { runId: string; state: string };
  save(`${name}-entry`, entryId, await handle.fetchHistory());
  const child = client.workflow.getHandle(status.runId);
  const history = await child.fetchHistory();
  save(`${name}-run`, status.runId, history);
  console.log(`${name}: ${status.state}, ${history.events?.length} events`);
}

await withTestWorker(
  {
    dags: runs.map((r) => r.dag),
    activities: { ...createTestActivities(new EventLog()), ...createExampleActivities() },
  },
  async ({ client, taskQueue }) => {
    for (const { name, dag, params, scheduled } of runs) {
      if (only.length && !only.includes(name)) continue;
      if (scheduled) {
        await recordScheduled(client, taskQueue, name, dag, params ?? {});
        continue;
      }
      const run = await triggerDagRun(client, dag, { taskQueue, params: params ?? {} });
      const status = await waitForRun(run.handle);
      const history = await run.handle.fetchHistory();
      save(name, run.runId, history);
      console.log(`${name}: ${status.state}, ${history.events?.length} events`);
    }
  },
);
process.exit(0);
