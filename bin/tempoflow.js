#!/usr/bin/env node
// The `tempoflow` executable. From an installed package it runs the compiled CLI (dist/); in a checkout of the
// repository, where the TypeScript sources sit beside it, it runs them through tsx, so no build step is needed.
import { existsSync } from 'node:fs';

// The AWS SDK warns on every start that releases from 2027 need Node 22; the locked version supports Node 20.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
const sources = new URL('../client/cli.ts', import.meta.url);
let run;
if (existsSync(sources)) {
  const { register } = await import('tsx/esm/api');
  register();
  ({ run } = await import(sources.href));
} else {
  ({ run } = await import('../dist/cli.js'));
}
await run(process.argv);
