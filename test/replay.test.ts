import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { it } from 'node:test';
import { historyFromJSON } from '@temporalio/common/lib/proto-utils';
import { Worker } from '@temporalio/worker';
import { workflowBundle } from './support';

const dir = new URL('./fixtures/histories/', import.meta.url);

/**
 * Replays recorded runs against today's runner. A change that would make old runs take a different path
 * (non-determinism) fails here: record new fixtures only for intended changes (`npm run record-histories`).
 */
it('replays the recorded run histories deterministically', async () => {
  const files = readdirSync(dir).filter((f) => f.endsWith('.json'));
  assert.ok(files.length >= 5, `expected at least 5 history fixtures, found ${files.length}`);
  const histories = files.map((file) => {
    const fixture = JSON.parse(readFileSync(new URL(file, dir), 'utf8')) as { workflowId: string; history: unknown };
    return { workflowId: fixture.workflowId, history: historyFromJSON(fixture.history) };
  });
  const results = [];
  for await (const result of Worker.runReplayHistories({ workflowBundle: await workflowBundle() }, histories)) {
    results.push(result);
  }
  assert.equal(results.length, files.length);
  for (const result of results) assert.equal(result.error, undefined, `${result.workflowId}: ${String(result.error)}`);
});
