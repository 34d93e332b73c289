/** `tempoflow sparkify report` (a command this repository's project adds): the published lake as one HTML page. */
import { constants } from 'node:fs';
import { access, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Command } from 'commander';
import { TempoflowError } from '../../core/errors';
import type { CliContext } from '../../client/context';
import { createStore } from '../../storage';
import { buildReport, renderReport } from './report';

export function registerReport(group: Command, ctx: CliContext): void {
  group
    .command('report')
    .description('one HTML page of listening insights from a published lake (charts inlined, no network needed)')
    .requiredOption('--lake <uri>', 'the published lake: s3://bucket/prefix or a local directory')
    .option('--out <file>', 'where to write the page', 'report.html')
    .option('--json', 'print the numbers as JSON as well')
    .action(async (flags: { lake: string; out: string; json?: boolean }) => {
      const out = path.resolve(flags.out);
      const cannotWrite = (cause: unknown) =>
        new TempoflowError(`cannot write the report to ${out}: ${(cause as Error).message}`, { cause });
      // Checked before the lake is read: a mistyped --out should not cost a download of the whole lake first.
      await access(path.dirname(out), constants.W_OK).catch((cause: unknown) => {
        throw cannotWrite(cause);
      });
      const data = await buildReport({ store: createStore(), lake: flags.lake });
      await writeFile(out, renderReport(data)).catch((cause: unknown) => {
        throw cannotWrite(cause);
      });
      if (flags.json) return ctx.json({ out, ...data });
      const matched = data.plays ? ((100 * data.matchedPlays) / data.plays).toFixed(1) : '0';
      ctx.out(`${ctx.style.green('✔')} report of ${flags.lake} written to ${out}`);
      ctx.out(
        ctx.style.dim(
          `  ${data.plays.toLocaleString('en-US')} plays, ${matched}% matched to a song, ` +
            `${data.rows.users.toLocaleString('en-US')} users; quality ${
              data.quality ? (data.quality.report.passed ? 'passed' : 'FAILED') : 'report not found'
            }`,
        ),
      );
    });
}
