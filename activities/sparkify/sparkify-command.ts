/** `tempoflow sparkify …` (commands this repository's project adds): the published lake's report and upkeep. */
import type { Command } from 'commander';
import { CliExit } from '../../client/context';
import type { CliContext } from '../../client/context';
import { formatBytes, table } from '../../client/render';
import { durationToMs } from '../../core/duration';
import { createStore } from '../../storage';
import { joinUri } from '../../storage/uri';
import { registerReport } from './report-command';

export function register(program: Command, ctx: CliContext): void {
  const group = program.command('sparkify').description('the Sparkify data lake');
  registerReport(group, ctx);
  group
    .command('vacuum')
    .description(
      'remove the work areas (_staging/<run>/) of runs that never published, once nothing wrote to them for --retain',
    )
    .requiredOption('--lake <uri>', 'the lake: s3://bucket/prefix or a local directory')
    .option(
      '--retain <duration>',
      'keep areas written to within this long (a failed run can be retried meanwhile)',
      '7d',
    )
    .option('--dry-run', 'list what would be removed; remove nothing')
    .option('--json', 'print the result as JSON')
    .action(async (flags: { lake: string; retain: string; dryRun?: boolean; json?: boolean }) => {
      const retainMs = durationToMs(flags.retain, '--retain');
      const { vacuumStaging } = await import('./vacuum');
      const store = createStore();
      const result = await vacuumStaging({ store, lake: flags.lake, retainMs, dryRun: flags.dryRun });
      // A mistyped --lake must not read as "nothing to clean".
      if (result.areas.length === 0 && !(await store.exists(joinUri(flags.lake, 'songplays', '_run.json')))) {
        throw new CliExit(2, `error: no Sparkify lake at ${flags.lake}: no published tables and no work areas`);
      }
      if (flags.json) return ctx.json(result);
      const s = ctx.style;
      if (result.areas.length === 0) return ctx.out(`${s.green('✔')} no work areas under ${flags.lake}/_staging/`);
      ctx.out(
        table(
          ['run', 'files', 'bytes', 'last written', 'action'],
          result.areas.map((a) => [a.run, String(a.files), formatBytes(a.bytes), a.newest, a.action]),
          s,
        ),
      );
      const verb = flags.dryRun ? 'would remove' : 'removed';
      const gone = result.areas.filter((a) => a.action === 'removed' || a.action === 'would remove');
      ctx.out(
        `${s.green('✔')} ${verb} ${gone.length} of ${result.areas.length} work areas ` +
          `(${gone.reduce((n, a) => n + a.files, 0)} files, ${formatBytes(gone.reduce((n, a) => n + a.bytes, 0))})`,
      );
    });
}
