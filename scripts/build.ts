/**
 * Bundles the workflow code once (`npm run build`) into dist/workflow-bundle.js; workers use it when present,
 * so they start in a fraction of a second instead of bundling with webpack at every start.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { bundleWorkflows, PREBUILT_BUNDLE_PATH } from '../worker/create-worker';

const started = Date.now();
const { code } = await bundleWorkflows();
mkdirSync(path.dirname(PREBUILT_BUNDLE_PATH), { recursive: true });
writeFileSync(PREBUILT_BUNDLE_PATH, code);
const kib = Math.round(Buffer.byteLength(code) / 1024);
console.log(
  `wrote ${path.relative(process.cwd(), PREBUILT_BUNDLE_PATH)} (${kib} KiB) in ${((Date.now() - started) / 1000).toFixed(1)}s`,
);
