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
        const ns = encodeURIComponent(temporal.namespace);
        const query = encodeURIComponent(`DagId="${diamondDag.id}"`);
        await openUntilVisible(page, `${temporal.uiUrl}/namespaces/${ns}/workflows?query=${query}`, run.runId);

        console.log('LISTURL', page.url());
        console.log('LIST', (await page.locator('body').innerText()).slice(0, 3000));
        const inputs = await page.locator('input').evaluateAll((els) => els.map((e) => [e.getAttribute('data-testid'), e.getAttribute('id'), (e as HTMLInputElement).value]));
        console.log('INPUTS', JSON.stringify(inputs));
        console.log('ROWS', await page.locator('table tbody tr').count(), await page.getByRole('link', { name: run.runId }).count());
        await page.getByRole('link', { name: run.runId }).first().click();
        await page.waitForURL(/\/workflows\/[^/]+\/[^/]+/, { timeout: 15_000 });
        // The run's static summary names the DAG and logical date.
        await page.getByText(`logical date ${run.input.logicalDate}`).first().waitFor({ timeout: 15_000 });
        console.log('RUNURL', page.url());
        const body = await page.locator('body').innerText();
        for (const m of body.matchAll(/.{0,80}(logical date|task [abcd]|testUpstream).{0,80}/g)) console.log('HIT', JSON.stringify(m[0]));
        console.log('LD', await page.getByText(`logical date ${run.input.logicalDate}`).evaluateAll((els) => els.map((e) => e.outerHTML.slice(0, 300))));
        // Every task is an activity named by its task.
        const historyUrl = page.url().replace(/\/(history|summary|timeline)?$/, '') + '/history';
        await openUntilVisible(page, historyUrl, 'testUpstream');
        // The timeline labels each activity with its type and its summary, `task <id>`.
        for (const [activity, task] of [
          ['testRecord', 'a'],
          ['testRecord', 'b'],
          ['testRecord', 'c'],
          ['testUpstream', 'd'],
        ]) {
          await page.getByText(`${activity} • task ${task}`).first().waitFor({ timeout: 10_000 });
        }
        console.log('TL', await page.getByText('testRecord • task a').evaluateAll((els) => els.map((e) => e.outerHTML.slice(0, 300))));
        console.log('HIST', (await page.locator('body').innerText()).split('Event History')[1]?.slice(0, 1500));
        mkdirSync(ARTIFACTS, { recursive: true });
        await page.screenshot({ path: join(ARTIFACTS, 'web-ui-run.png'), fullPage: true });
      } finally {
        await browser.close();
        rmSync(profile, { recursive: true, force: true });
      }
    },
  );
});
