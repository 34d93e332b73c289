import js from '@eslint/js';
import tseslint from 'typescript-eslint';

/** Application code (this repository's DAGs and activities, or a project's): never imported by the framework. */
const APPLICATION_CODE = {
  regex: '^(\\.\\./){1,2}(dags|tempoflow\\.config[^/]*|activities)(/.*)?$',
  message: 'Framework code imports no DAG or activity: register them in tempoflow.config.ts (defineProject).',
};

export default tseslint.config(
  // test/fixtures/types: files tsc must reject on purpose (test/types.test.ts compiles them itself).
  { ignores: ['node_modules', 'dist', 'lake', '.tempoflow', 'bin/*.js', 'eslint.config.js', 'test/fixtures/types'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      '@typescript-eslint/no-floating-promises': [
        'error',
        // node:test's describe/it return promises the runner itself tracks.
        {
          allowForKnownSafeCalls: [
            { from: 'package', package: 'node:test', name: ['describe', 'it', 'test', 'suite'] },
          ],
        },
      ],
      // Task activities are async by contract even when a given one does not await.
      '@typescript-eslint/require-await': 'off',
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/restrict-template-expressions': ['error', { allowNumber: true, allowBoolean: true }],
    },
  },
  {
    // The framework knows no application: DAGs and their activities reach it only through a project file.
    files: [
      'api/**/*.ts',
      'core/**/*.ts',
      'worker/**/*.ts',
      'client/**/*.ts',
      'services/**/*.ts',
      'testing/**/*.ts',
      'storage/**/*.ts',
    ],
    rules: {
      'no-restricted-imports': ['error', { patterns: [APPLICATION_CODE] }],
    },
  },
  {
    // Workflow code runs in Temporal's deterministic sandbox: no Node APIs, no I/O.
    files: ['workflows/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: ['node:*', 'fs', 'path', 'os', 'child_process'],
              message: 'Workflow code must be deterministic: no Node APIs.',
            },
            {
              group: ['**/activities', '**/activities/*'],
              allowTypeImports: true,
              message: 'Workflows import activity types only.',
            },
            { group: ['@aws-sdk/*', '@duckdb/*'], message: 'I/O belongs in activities.' },
            APPLICATION_CODE,
          ],
        },
      ],
    },
  },
);
