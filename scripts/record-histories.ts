/**
 * Records the histories of representative runs as replay fixtures (test/fixtures/histories). Run it after an
 * intended change to the runner's behaviour, and commit the result: `npm run record-histories`.
 */
import { writeFileSync } from 'node:fs';
import { historyToJSON } from '@temporalio/common/lib/proto-utils';
import { exampleFanout } from '../dags/example';
import { createExampleActivities } from '../activities/example';
import { triggerDagRun, waitForRun } from '../client/runs';
import type { DagSnapshot, Json } from '../core/types';
import {
  createTestActivities,
  diamondDag,
  EventLog,
  mapDag,
  retryDag,
  triggerRuleDag,
} from '../test/fixtures/test-dags';
import { withTestWorker } from '../test/support';

const runs: { name: string; dag: DagSnapshot; params?: Record<string, Json> }[] = [
  { name: 'diamond', dag: diamondDag, params: { sleepMs: 10 } },
  { name: 'retry-and-non-retryable', dag: retryDag },
  { name: 'trigger-rules-mixed', dag: triggerRuleDag('mixed') },
  { name: 'map-inline', dag: mapDag, params: { count: 20 } },
  { name: 'map-batches', dag: mapDag, params: { count: 600 } },
  { name: 'example-fanout', dag: exampleFanout, params: { count: 12 } },
];

await withTestWorker(
  {
    dags: runs.map((r) => r.dag),
    activities: { ...createTestActivities(new EventLog()), ...createExampleActivities() },
  },
  async ({ client, taskQueue }) => {
    for (const { name, dag, params } of runs) {
      const run = await triggerDagRun(client, dag, { taskQueue, params: params ?? {} });
      const status = await waitForRun(run.handle);
      const history = await run.handle.fetchHistory();
      const file = new URL(`../test/fixtures/histories/${name}.json`, import.meta.url);
      // Child workflow ids derive from the run id, so replay needs the original one.
      writeFileSync(file, `{"workflowId": ${JSON.stringify(run.runId)},\n"history": ${historyToJSON(history)}}\n`);
      console.log(`${name}: ${status.state}, ${history.events?.length} events`);
    }
  },
);
process.exit(0);
