#!/usr/bin/env node
// The `tempoflow` executable: loads the TypeScript CLI through tsx, so it runs from the repository with no build step.
import { register } from 'tsx/esm/api';

// The AWS SDK warns on every start that releases from 2027 need Node 22; the locked version supports Node 20.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
register();
const { run } = await import('../client/cli.ts');
await run(process.argv);
