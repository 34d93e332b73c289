/** `tempoflow worker`: run a worker for every DAG until Ctrl-C / SIGTERM. */
import type { Command } from 'commander';
import { TempoflowError } from '../../core/errors';
import { TemporalUnreachableError, isConnectionRefused } from '../connect';
import type { CliContext } from '../context';
import {
  DEFAULT_DUCKDB_INSTANCES,
  DEFAULT_DUCKDB_MEMORY_LIMIT,
  DEFAULT_MAX_CONCURRENT_ACTIVITIES,
  DEFAULT_WORKFLOW_STACK_TRACE_FRAMES,
  resolveWorkerSettings,
} from '../../worker/settings';

interface WorkerFlags {
  maxConcurrentActivities?: string;
  duckdbMemoryLimit?: string;
  duckdbThreads?: string;
  duckdbTempDir?: string;
  duckdbInstances?: string;
  logLocation?: string;
  workflowStackTraceFrames?: string;
}

export function register(program: Command, ctx: CliContext): void {
  program
    .command('worker')
    .description("run a worker for the project's DAGs from the task queue, until Ctrl-C or SIGTERM")
    .option(
      '--max-concurrent-activities <n>',
      `task instances run at once (env TEMPOFLOW_MAX_CONCURRENT_ACTIVITIES, default ${DEFAULT_MAX_CONCURRENT_ACTIVITIES})`,
    )
    .option(
      '--duckdb-memory-limit <size>',
      `DuckDB memory limit of each task (env TEMPOFLOW_DUCKDB_MEMORY_LIMIT, default '${DEFAULT_DUCKDB_MEMORY_LIMIT}')`,
    )
    .option('--duckdb-threads <n>', 'DuckDB threads of each task (env TEMPOFLOW_DUCKDB_THREADS, default: CPU cores)')
    .option('--duckdb-temp-dir <dir>', 'DuckDB spill directory (env TEMPOFLOW_DUCKDB_TEMP_DIR)')
    .option(
      '--duckdb-instances <n>',
      `DuckDB databases open at once in the worker; tasks wait for one (env TEMPOFLOW_DUCKDB_INSTANCES, default ${DEFAULT_DUCKDB_INSTANCES})`,
    )
    .option(
      '--log-location <folder or s3://bucket/prefix>',
      'keep task logs there, read with `tempoflow runs logs` (env TEMPOFLOW_LOG_LOCATION)',
    )
    .option(
      '--workflow-stack-trace-frames <n>',
      `frames of the runner's stack traces in the Web UI; more cost worker CPU (env TEMPOFLOW_WORKFLOW_STACK_TRACE_FRAMES, default ${DEFAULT_WORKFLOW_STACK_TRACE_FRAMES})`,
    )
    .action(async (flags: WorkerFlags) => {
      const { runWorker } = await import('../../worker/main');
      const { projectWorkerParts } = await import('../../worker/load-project');
      const project = ctx.project();
      const settings = resolveWorkerSettings({ ...ctx.globalFlagOverrides(), ...definedOnly(flags) }, ctx.env, {
        ...(project.worker ? { project: project.worker } : {}),
      });
      const parts = await projectWorkerParts(project, settings);
      try {
        await runWorker(settings, { ...parts, log: (line) => ctx.err(line) });
      } catch (err) {
        // Our own errors (a log location S3 refuses) say what they are about; a refused connection of the SDK's is
        // Temporal's.
        if (!(err instanceof TempoflowError) && isConnectionRefused(err))
          throw new TemporalUnreachableError(settings.address, 'connection refused', { cause: err });
        throw err;
      }
    });
}

function definedOnly<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}
