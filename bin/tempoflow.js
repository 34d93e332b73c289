#!/usr/bin/env node
// The `tempoflow` executable: loads the TypeScript CLI through tsx, so it runs from the repository with no build step.
import { register } from 'tsx/esm/api';

register();
const { run } = await import('../client/cli.ts');
await run(process.argv);
