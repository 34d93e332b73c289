/**
 * The Temporal Web UI as tempoflow's status page, driven in headless Chromium (Debian's package, never a
 * downloaded browser): find a run by `DagId`, open it, and see its tasks as named activities.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { it } from 'node:test';
import { chromium } from 'playwright-core';
import type { Page } from 'playwright-core';
import { triggerDagRun, waitForRun } from '../client/runs';
import { createTestActivities, diamondDag, EventLog } from './fixtures/test-dags';
import { testServices } from './services';
import { withTestWorker } from './support';

const CHROMIUM = process.env.TEMPOFLOW_CHROMIUM ?? '/usr/bin/chromium';
const ARTIFACTS = join(import.meta.dirname, '..', 'test-artifacts');

/** Reloads `url` until `text` is on the page: the UI's list lags a moment behind visibility. */
async function openUntilVisible(page: Page, url: string, text: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    await page.goto(url, { waitUntil: 'domcontentloaded' });
    try {
      await page.getByText(text, { exact: false }).first().waitFor({ timeout: 3000 });
      return;
    } catch (err) {
      if (Date.now() > deadline) throw err;
    }
  }
}

it('finds a run by DagId in the Web UI and shows its tasks as named activities', async () => {
  assert.ok(existsSync(CHROMIUM), `Chromium not found at ${CHROMIUM}: run \`apt-get install -y chromium\``);
  const { temporal } = await testServices();
  await withTestWorker(
    { dags: [diamondDag], activities: createTestActivities(new EventLog()) },
    async ({ client, taskQueue }) => {
      const run = await triggerDagRun(client, diamondDag, { taskQueue, params: { sleepMs: 10 } });
      assert.equal((await waitForRun(run.handle)).state, 'success');

      const profile = mkdtempSync(join(tmpdir(), 'tempoflow-chromium-'));
      const browser = await chromium.launchPersistentContext(profile, {
        executablePath: CHROMIUM,
        headless: true,
        viewport: { width: 1400, height: 1000 },
        args: [
          '--no-sandbox',
          '--disable-gpu',
          '--disable-quic',
          '--no-first-run',
          '--disable-background-networking',
          '--disable-component-update',
          '--disable-sync',
        ],
      });
      try {
        const page = await browser.newPage();
        mkdirSync(ARTIFACTS, { recursive: true });
        const ns = encodeURIComponent(temporal.namespace);
        const query = encodeURIComponent(`DagId="${diamondDag.id}"`);
        // The workflow list, filtered by the query in the URL (Web UI 2.x: `?query=`).
        await openUntilVisible(page, `${temporal.uiUrl}/namespaces/${ns}/workflows?query=${query}`, run.runId);
        // The UI took the query as a DagId filter (not an unfiltered list that happens to hold the run).
        const chip = page.locator('input[data-testid^="dropdown-filter-chip-DagId"]').first();
        assert.equal(await chip.inputValue({ timeout: 10_000 }), diamondDag.id);
        await page.screenshot({ path: join(ARTIFACTS, 'web-ui-list.png') });

        await page.getByRole('link', { name: run.runId }).first().click();
        await page.waitForURL(/\/workflows\/[^/]+\/[^/]+\/history/, { timeout: 15_000 });
        // The run's static summary names the DAG and logical date.
        await page
          .getByText(`${diamondDag.id} · logical date ${run.input.logicalDate}`)
          .first()
          .waitFor({ timeout: 15_000 });
        // The timeline labels each activity `<activity type> • <summary>`: one per task, named by its task
        // (text that only activity events produce; the DAG in the run's input names activity types too).
        const expected = ['testRecord • task a', 'testRecord • task b', 'testRecord • task c', 'testUpstream • task d'];
        for (const label of expected) await page.getByText(label, { exact: true }).first().waitFor({ timeout: 15_000 });
        const labels = await page
          .locator('svg text')
          .filter({ hasText: /^test\w+ • task \w+$/ })
          .allTextContents();
        assert.deepEqual([...new Set(labels.map((l) => l.trim()))].sort(), expected);

        // The page scrolls inside #content-wrapper, so a "full page" shot is only the viewport: grow the
        // viewport until the content fits (it reflows once resized), bounded.
        for (let i = 0, height = 0; i < 4; i++) {
          const needed = await page
            .locator('#content-wrapper')
            .evaluate((el: { scrollHeight: number }) => el.scrollHeight);
          if (needed <= height) break;
          height = Math.min(needed + 40, 8000);
          await page.setViewportSize({ width: 1400, height });
          await page.waitForTimeout(300);
        }
        await page.screenshot({ path: join(ARTIFACTS, 'web-ui-run.png'), fullPage: true });
      } finally {
        await browser.close();
        rmSync(profile, { recursive: true, force: true });
      }
    },
  );
});
