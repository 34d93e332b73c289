/**
 * The `tempoflow` command line. Each command group lives in `client/commands/<name>.ts` and exports
 * `register(program, ctx)`; adding a command is one file and one line in `COMMANDS` below.
 *
 * Exit codes: 0 success, 1 a run failed, 2 a usage or validation error (bad flag, bad param, unknown DAG,
 * Temporal unreachable).
 */
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Command, CommanderError, Option } from 'commander';
import { InvalidFieldError, TempoflowError } from '../core/errors';
import { DEFAULT_ADDRESS, DEFAULT_NAMESPACE, DEFAULT_TASK_QUEUE } from '../worker/settings';
import * as backfillCommands from './commands/backfill';
import * as dagsCommands from './commands/dags';
import * as devCommand from './commands/dev';
import * as initCommand from './commands/init';
import * as poolsCommands from './commands/pools';
import * as runsCommands from './commands/runs';
import * as schedulesCommands from './commands/schedules';
import * as triggerCommand from './commands/trigger';
import * as workerCommand from './commands/worker';
import { CliContext, CliExit } from './context';
import type { CliIo } from './context';

/** A command module: registers its commands on the program. */
export interface CommandModule {
  register(program: Command, ctx: CliContext): void;
}

/** Every command group, in the order `--help` lists them. */
export const COMMANDS: CommandModule[] = [
  dagsCommands,
  triggerCommand,
  runsCommands,
  schedulesCommands,
  poolsCommands,
  backfillCommands,
  workerCommand,
  devCommand,
  initCommand,
];

const VERSION = '0.1.0';

/** Builds the program; `extra` command modules (a project's `commands`) are registered after the built-in ones. */
export function buildProgram(ctx: CliContext, extra: CommandModule[] = []): Command {
  const program = new Command('tempoflow')
    .description('Airflow-style DAGs that run as durable Temporal workflows')
    .version(VERSION, '-V, --version', 'print the version')
    .addOption(
      new Option('--address <host:port>', 'Temporal frontend address').env('TEMPORAL_ADDRESS').default(DEFAULT_ADDRESS),
    )
    .addOption(
      new Option('--namespace <name>', 'Temporal namespace').env('TEMPORAL_NAMESPACE').default(DEFAULT_NAMESPACE),
    )
    .addOption(
      new Option('--task-queue <name>', 'task queue runs and workers use')
        .env('TEMPOFLOW_TASK_QUEUE')
        .default(DEFAULT_TASK_QUEUE),
    )
    .option('--project <path>', 'the project file, or its folder (default: tempoflow.config.ts in this folder)')
    .option('-v, --verbose', 'show stack traces and more logs (also: DEBUG=1)')
    .showHelpAfterError(`(run with --help for usage)`)
    .configureHelp({ sortSubcommands: false, showGlobalOptions: true })
    .addHelpText(
      'after',
      `
Examples:
  $ tempoflow init my-project                             a new project with a DAG 'hello'
  $ tempoflow dags list
  $ tempoflow dags show hello
  $ tempoflow trigger hello --local                       run once on a throwaway local server
  $ tempoflow dev                                         local Temporal server + worker, until Ctrl-C
  $ tempoflow trigger hello -p name=Ada --wait
  $ tempoflow runs list --dag hello`,
    );
  ctx.attach(program);
  for (const module of [...COMMANDS, ...extra]) module.register(program, ctx);
  configureTree(program, ctx);
  return program;
}

/** Every command (also ones added with `addCommand`) throws instead of exiting and writes through ctx. */
function configureTree(command: Command, ctx: CliContext): void {
  command.exitOverride();
  command.configureOutput({
    writeOut: (s) => ctx.stdout.write(s),
    writeErr: (s) => ctx.stderr.write(s),
    outputError: (s, write) => write(ctx.errStyle.red(s)),
  });
  for (const sub of command.commands) configureTree(sub, ctx);
}

/** Runs the CLI and returns the exit code (it does not exit). */
export async function main(argv: string[] = process.argv, io: Partial<CliIo> = {}): Promise<number> {
  const ctx = new CliContext(io);
  try {
    const { project, command } = scanArgs(argv.slice(2));
    // `init` makes a project: it needs none, and a broken one where it runs must not stop it.
    if (command !== 'init') await ctx.loadProject(project);
    const program = buildProgram(ctx, [...(ctx.projectFile ? (ctx.project().commands ?? []) : [])]);
    await program.parseAsync(argv);
    // Commands report failure by throwing (CliExit); the process's exitCode belongs to whoever embeds the CLI.
    return 0;
  } catch (err) {
    return reportError(err, ctx);
  } finally {
    await ctx.close();
  }
}

/** Global options that take a value, so that the scan below skips their values. */
const VALUE_OPTIONS = new Set(['--address', '--namespace', '--task-queue', '--project']);

/** `--project <path>` and the command's name, read before commander parses (the project adds commands). */
export function scanArgs(args: string[]): { project?: string; command?: string } {
  let project: string | undefined;
  let command: string | undefined;
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === '--') break;
    if (arg.startsWith('--project=')) project = arg.slice('--project='.length);
    else if (arg === '--project') project = args[++i];
    else if (VALUE_OPTIONS.has(arg)) i++;
    else if (!arg.startsWith('-') && command === undefined) command = arg;
  }
  return { ...(project !== undefined ? { project } : {}), ...(command !== undefined ? { command } : {}) };
}

/** Prints an error the way a user should see it and returns the exit code. */
export function reportError(err: unknown, ctx: CliContext): number {
  if (err instanceof CommanderError) {
    // Commander already printed the message (and help for usage errors).
    if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help') {
      return 0;
    }
    if (err.code === 'commander.executeSubCommandAsync') return err.exitCode;
    return 2;
  }
  if (err instanceof CliExit) {
    if (err.message) ctx.err(err.message);
    return err.exitCode;
  }
  if (err instanceof TempoflowError) {
    // The library names its fields (`from`); the CLI names the flags that gave them (`--from`).
    const message = err instanceof InvalidFieldError ? err.describe((field) => ctx.flagFor(field)) : err.message;
    ctx.err(`${ctx.errStyle.red('error:')} ${message}`);
    if (ctx.globals.verbose && err.stack) ctx.err(ctx.errStyle.dim(err.stack));
    return 2;
  }
  const message = err instanceof Error ? err.message + serverReason(err) : String(err);
  ctx.err(`${ctx.errStyle.red('error:')} ${message}`);
  if (ctx.globals.verbose) {
    if (err instanceof Error && err.stack) ctx.err(ctx.errStyle.dim(err.stack));
  } else {
    ctx.err(ctx.errStyle.dim('(run with --verbose or DEBUG=1 for details)'));
  }
  return 1;
}

/**
 * The server's own words behind an SDK error: the SDK says `Failed to start Workflow` and keeps the server's
 * reason (`invalid value for search attribute …`) in its gRPC cause's details.
 */
function serverReason(err: Error): string {
  const details = (err.cause as { details?: unknown } | undefined)?.details;
  return typeof details === 'string' && details && !err.message.includes(details) ? `: ${details}` : '';
}

/** Runs the CLI as a program: flushes output and exits with the code. */
export async function run(argv: string[] = process.argv): Promise<never> {
  const code = await main(argv);
  await new Promise<void>((resolve) => process.stdout.write('', () => resolve()));
  process.exit(code);
}

const invokedDirectly = (() => {
  try {
    return realpathSync(process.argv[1] ?? '') === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
})();
if (invokedDirectly) await run();
