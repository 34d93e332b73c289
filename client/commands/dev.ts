/** `tempoflow dev`: a local Temporal server (with Web UI) and an in-process worker, until Ctrl-C. */
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { InvalidArgumentError } from 'commander';
import type { Command } from 'commander';
import type { DagSnapshot } from '../../core/types';
import { LOG_LOCATION_ENV, resolveLogLocation } from '../../worker/log-location';
import type { CliContext } from '../context';
import { isWorkerStoppedFirst } from './trigger';

interface DevFlags {
  s3?: boolean;
  port?: number;
  uiPort?: number;
  dbFile?: string;
}

export function register(program: Command, ctx: CliContext): void {
  program
    .command('dev')
    .description('start a local Temporal server with its Web UI and a worker, until Ctrl-C')
    .option('--s3', 'also start a local S3 server and give the worker its AWS_* settings')
    .option('--port <port>', 'Temporal frontend port (default: 7233 when free, else any free port)', port)
    .option('--ui-port <port>', 'Web UI port (default: 8233 when free, else any free port)', port)
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
      const frontendPort = flags.port ?? ((await isPortFree(7233)) ? 7233 : undefined);
      const uiPort = flags.uiPort ?? ((await isPortFree(8233)) ? 8233 : undefined);

      let workerEnv: Record<string, string> = {};
      let s3Lines: string[] = [];
      if (flags.s3) {
        const { startS3Server, s3EnvFor } = await import('../../services/s3-server');
        log('starting the local S3 server…');
        const s3 = await startS3Server();
        ctx.onCleanup(() => s3.stop());
        workerEnv = s3EnvFor(s3);
        s3Lines = [
          `  ${'S3 endpoint'.padEnd(16)} ${s.bold(s3.endpoint)}`,
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
        ...(frontendPort !== undefined ? { port: frontendPort } : {}),
        ...(uiPort !== undefined ? { uiPort } : {}),
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
          ...(stack.uiUrl && stack.uiUrl !== 'http://localhost:8233'
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

function port(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 65535) throw new InvalidArgumentError('must be a port number (1-65535)');
  return n;
}

export function isPortFree(p: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', () => resolve(false));
    server.listen({ port: p, host, exclusive: true }, () => server.close(() => resolve(true)));
  });
}

function shellQuote(value: string): string {
  return /^[\w@%+=:,./-]+$/.test(value) ? value : `'${value.replace(/'/g, `'\\''`)}'`;
}
