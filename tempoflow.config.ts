/**
 * This repository's project: the Sparkify data lake and the framework's example, registered the way any
 * project that installs tempoflow registers its own (an installed project imports from 'tempoflow').
 */
import { defineProject } from './core/project';
import { dags } from './dags/index';
import * as generateCommand from './activities/sparkify/generate-command';
import * as sparkifyCommand from './activities/sparkify/sparkify-command';

export default defineProject({
  dags,
  // Loaded on demand: DuckDB and the AWS SDK only in workers, not in every CLI call.
  activities: async (deps) => (await import('./activities/index')).createActivities(deps),
  commands: [generateCommand, sparkifyCommand],
});
