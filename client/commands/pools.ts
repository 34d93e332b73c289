/** `tempoflow pools ...`: named pools of slots shared by every run of every DAG. */
import type { Command } from 'commander';
import { InvalidFieldError } from '../../core/errors';
import type { CliContext } from '../context';
import { deletePool, listPools, setPool } from '../pools';
import { table } from '../render';

export function register(program: Command, ctx: CliContext): void {
  const group = program
    .command('pools')
    .description("named pools of slots shared by every run of every DAG (a task's `pool`)");

  group
    .command('set')
    .description('create a pool, or change its slots or description')
    .argument('<name>', 'pool name')
    .argument('<slots>', 'how many task instances may hold a slot at once')
    .option('--description <text>', 'what the pool protects')
    .option('--json', 'print JSON')
    .action(async (name: string, slotsText: string, flags: { description?: string; json?: boolean }) => {
      const slots = Number(slotsText);
      if (!/^\d+$/.test(slotsText) || slots < 1) {
        throw new InvalidFieldError('slots', `'${slotsText}' is not a positive whole number of slots`);
      }
      const pool = await setPool(await ctx.client(), name, {
        slots,
        ...(flags.description !== undefined ? { description: flags.description } : {}),
        taskQueue: ctx.globals.taskQueue,
      });
      if (flags.json) return ctx.json(pool);
      ctx.out(`${ctx.style.green('✔')} pool ${ctx.style.bold(name)}: ${pool.slots} slots (${pool.used} used)`);
    });

  group
    .command('list')
    .description('the pools: slots, used, waiting')
    .option('--json', 'print JSON')
    .action(async (flags: { json?: boolean }) => {
      const pools = await listPools(await ctx.client());
      if (flags.json) return ctx.json(pools);
      if (!pools.length) return ctx.out(ctx.style.dim('no pools'));
      ctx.out(
        table(
          ['pool', 'slots', 'used', 'waiting', 'description'],
          pools.map((p) => [p.name, String(p.slots), String(p.used), String(p.waiting), p.description ?? '']),
          ctx.style,
        ),
      );
    });

  group
    .command('delete')
    .description('delete a pool (refused while a task holds or waits for its slots)')
    .argument('<name>', 'pool name')
    .action(async (name: string) => {
      await deletePool(await ctx.client(), name);
      ctx.out(`${ctx.style.green('✔')} deleted pool ${ctx.style.bold(name)}`);
    });
}
