/**
 * The package build (`npm run build`): each public entry bundled by esbuild into dist/ as ES modules with
 * .d.ts files; the sources import without file extensions, which plain tsc output could not run under Node.
 * Dependencies stay external (the consumer's node_modules); entries share chunks, so the CLI and a project's
 * `import 'tempoflow'` see one TempoflowError class. scripts/build.ts adds the prebuilt workflow bundle.
 */
import { defineConfig } from 'tsup';

export default defineConfig({
  entry: {
    index: 'api/index.ts',
    worker: 'worker/index.ts',
    client: 'client/index.ts',
    testing: 'testing/index.ts',
    cli: 'client/cli.ts',
  },
  format: ['esm'],
  platform: 'node',
  target: 'node20',
  splitting: true,
  dts: {
    entry: { index: 'api/index.ts', worker: 'worker/index.ts', client: 'client/index.ts', testing: 'testing/index.ts' },
  },
  clean: true, // scripts/build.ts writes the workflow bundle afterwards
  sourcemap: false,
  outDir: 'dist',
  // Only the framework: its .d.ts never reach this repository's application code or tests.
  tsconfig: 'tsconfig.build.json',
});
