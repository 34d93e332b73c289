/** `tempoflow dev`: a local Temporal server (with Web UI) and an in-process worker, until Ctrl-C. */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { InvalidArgumentError } from 'commander';
import type { Command } from 'commander';
import type { DagSnapshot } from '../../core/types';
import { LOG_LOCATION_ENV, resolveLogLocation } from '../../worker/log-location';
import { CliExit, defaultUiUrl } from '../context';
import type { CliContext } from '../context';
import { formatDuration } from '../render';
import { isWorkerStoppedFirst } from './trigger';

interface DevFlags {
  s3?: boolean;
  bucket: string[];
  port?: number;
  uiPort?: number;
  dbFile?: string;
}

export function register(program: Command, ctx: CliContext): void {
  program
    .command('dev')
    .description('start a local Temporal server with its Web UI and a worker, until Ctrl-C')
    .option('--s3', 'also start a local S3 server and give the worker its AWS_* settings')
    .option(
      '--bucket <name>',
      `a bucket to create on the local S3 server (repeatable; default: ${DEFAULT_BUCKET})`,
      (value: string, previous: string[]) => [...previous, bucketName(value)],
      [],
    )
    .option('--port <port>', 'Temporal frontend port (default: 7233 when free, else any free port)', port)
    .option('--ui-port <port>', 'Web UI port (default: the frontend port + 1000 when free, else any free port)', port)
    .option('--db-file <path>', 'keep runs in this SQLite file across restarts (default: in memory)')
    .addHelpText(
      'after',
      `
Then, in another terminal:
  $ tempoflow trigger <dag> --wait --address <the address it prints>`,
    )
    .action(async (flags: DevFlags) => {
      const { startLocalStack } = await import('../local');
      const { describeWorker } = await import('../../worker/main');
      const s = ctx.errStyle;
      const log = (line: string) => ctx.err(s.dim(line));

      let workerEnv: Record<string, string> = {};
      let s3Lines: string[] = [];
      if (flags.bucket.length && !flags.s3) throw new CliExit(2, 'error: --bucket needs --s3');
      if (flags.s3) {
        const { startS3Server, s3EnvFor } = await import('../../services/s3-server');
        const started = Date.now();
        log('starting the local S3 server…');
        // A new server has no buckets, and writing to a missing bucket fails: start with one to write into.
        const buckets = flags.bucket.length ? [...new Set(flags.bucket)] : [DEFAULT_BUCKET];
        const s3 = await startS3Server({ buckets });
        ctx.onCleanup(() => s3.stop());
        log(`starting the local S3 server: done in ${formatDuration(Date.now() - started)}`);
        workerEnv = s3EnvFor(s3);
        s3Lines = [
          `  ${'S3 endpoint'.padEnd(16)} ${s.bold(s3.endpoint)}`,
          `  ${'Buckets'.padEnd(16)} ${buckets.map((b) => `s3://${b}`).join(', ')}`,
          '',
          s.dim('  To use it from another shell:'),
          ...Object.entries(workerEnv).map(([k, v]) => `    export ${k}=${shellQuote(v)}`),
        ];
      }

      // Task logs are kept somewhere `tempoflow runs logs` can read: where the worker would keep them anyway,
      // else beside the --db-file (kept with its runs), else a folder removed with the in-memory server.
      const project = ctx.project();
      let logLocation = resolveLogLocation(undefined, { ...ctx.env, ...workerEnv }, project.worker?.logLocation);
      const ownLogLocation = !logLocation;
      if (!logLocation) {
        if (flags.dbFile !== undefined) {
          logLocation = path.resolve(`${flags.dbFile}.task-logs`);
        } else {
          const dir = await mkdtemp(path.join(os.tmpdir(), 'tempoflow-dev-task-logs-'));
          ctx.onCleanup(() => rm(dir, { recursive: true, force: true }));
          logLocation = dir;
        }
        workerEnv = { ...workerEnv, [LOG_LOCATION_ENV]: logLocation };
      }

      const { taskQueue } = ctx.globals;
      const stack = await startLocalStack(ctx, {
        taskQueue,
        log,
        ui: true,
        ...(flags.port !== undefined ? { port: flags.port } : {}),
        ...(flags.uiPort !== undefined ? { uiPort: flags.uiPort } : {}),
        ...(flags.dbFile !== undefined ? { dbFile: flags.dbFile } : {}),
        workerEnv,
      });
      const addressFlag = stack.address === '127.0.0.1:7233' ? '' : ` --address ${stack.address}`;
      ctx.out(
        [
          '',
          `${s.green('✔')} ${s.bold('tempoflow dev is running')}`,
          `  ${'Temporal'.padEnd(16)} ${s.bold(stack.address)}  ${s.dim(`namespace ${stack.namespace}`)}`,
          `  ${'Web UI'.padEnd(16)} ${s.bold(stack.uiUrl ?? '(off)')}`,
          `  ${'Worker'.padEnd(16)} ${describeWorker(stack.settings, stack.worker.dags).replace(/^tempoflow worker on \S+ · /, '')}`,
          ...s3Lines,
          '',
          s.dim('  Try it in another terminal:'),
          `    npx tempoflow trigger ${exampleTrigger(stack.worker.dags[0])} --wait${addressFlag}`,
          // The CLI finds the Web UI at the frontend port + 1000 (`defaultUiUrl`); elsewhere it must be told.
          ...(stack.uiUrl && stack.uiUrl !== defaultUiUrl(stack.address)
            ? [`    export TEMPORAL_UI_URL=${stack.uiUrl}`]
            : []),
          ...(ownLogLocation ? [`    export ${LOG_LOCATION_ENV}=${shellQuote(logLocation)}`] : []),
          '',
          s.dim('  Press Ctrl-C to stop.'),
        ].join('\n'),
      );
      // The worker stops on SIGINT/SIGTERM (Temporal's Runtime handles them); then everything else is stopped.
      try {
        await stack.runUntil(() => new Promise<never>(() => undefined));
      } catch (err) {
        // The never-settling promise is reported as unfinished once the worker stopped: the normal end.
        if (!isWorkerStoppedFirst(err)) throw err;
      } finally {
        ctx.err(s.dim('stopping…'));
        await stack.stop();
      }
      ctx.err(s.dim('stopped'));
    });
}

/** `<dag> -p <param>=<param> …`: a DAG's id with a placeholder for each param a run must be given. */
function exampleTrigger(dag: Pick<DagSnapshot, 'id' | 'params'> | undefined): string {
  if (!dag) return '<dag>';
  const needed = Object.entries(dag.params).filter(([, spec]) => spec.required && spec.default === undefined);
  return [dag.id, ...needed.map(([name]) => `-p ${name}=<${name}>`)].join(' ');
}

/** The bucket `dev --s3` creates when no `--bucket` is given. */
const DEFAULT_BUCKET = 'tempoflow';

/** S3's rules for a bucket name (3-63 lowercase letters, digits, dots and hyphens, a letter or digit at each end). */
function bucketName(value: string): string {
  if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(value)) {
    throw new InvalidArgumentError(
      'must be 3-63 lowercase letters, digits, dots or hyphens, starting and ending with a letter or digit',
    );
  }
  return value;
}

function port(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 65535) throw new InvalidArgumentError('must be a port number (1-65535)');
  return n;
}

function shellQuote(value: string): string {
  return /^[\w@%+=:,./-]+$/.test(value) ? value : `'${value.replace(/'/g, `'\\''`)}'`;
}
