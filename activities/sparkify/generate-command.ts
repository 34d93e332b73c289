/** `tempoflow generate sparkify` (a command this repository's project adds): Sparkify data in the Udacity layout, at any scale. */
import { InvalidArgumentError } from 'commander';
import type { Command } from 'commander';
import { generateSparkify } from './generate';
import { CliExit } from '../../client/context';
import type { CliContext } from '../../client/context';
import { createStore } from '../../storage/store';
import { joinUri } from '../../storage/uri';

interface GenerateFlags {
  out: string;
  songs: number;
  events: number;
  days: number;
  seed: number;
  start: string;
  matchRate: number;
  duplicates: number;
  replace?: boolean;
  json?: boolean;
}

export function register(program: Command, ctx: CliContext): void {
  const group = program.command('generate').description('generate sample data');
  group
    .command('sparkify')
    .description('Sparkify song files and daily event logs in the Udacity layout (song_data/, log_data/)')
    .requiredOption('--out <uri>', 'where to write: s3://bucket/prefix or a local directory')
    .option('--songs <n>', 'song files', count, 1000)
    .option('--events <n>', 'event log lines in all', count, 50_000)
    .option('--days <n>', 'daily log files', count, 30)
    .option('--seed <n>', 'the same seed gives the same bytes', count, 1)
    .option('--start <date>', 'first day of events (UTC)', '2018-11-01')
    .option('--match-rate <share>', "share of plays that match a song's title, artist and duration", share, 0.3)
    .option('--duplicates <n>', 'plays written twice (as an upstream would redeliver them)', count, 0)
    .option('--replace', 'delete the song_data/ and log_data/ already under --out first')
    .option('--json', 'print what was generated as JSON')
    .action(async (flags: GenerateFlags) => {
      // Files of an earlier generation left beside new ones would make another dataset than the one announced.
      const store = createStore();
      const areas = ['log_data', 'song_data'].map((area) => joinUri(flags.out, area));
      if (flags.replace) {
        for (const area of areas) await store.deletePrefix(area);
      } else {
        for (const area of areas) {
          const files = await store.list(area);
          if (files.length > 0) {
            throw new CliExit(
              2,
              `error: ${area} already holds ${files.length.toLocaleString('en-US')} files: generate into an empty ` +
                'location, or pass --replace to delete song_data/ and log_data/ first',
            );
          }
        }
      }
      const started = Date.now();
      const expected = await generateSparkify({
        out: flags.out,
        songs: flags.songs,
        events: flags.events,
        days: flags.days,
        seed: flags.seed,
        startDate: flags.start,
        matchRate: flags.matchRate,
        duplicates: flags.duplicates,
        store,
      });
      if (flags.json) return ctx.json(expected);
      ctx.out(
        `${ctx.style.green('✔')} ${expected.songFiles.toLocaleString('en-US')} song files and ${expected.logFiles} daily logs ` +
          `(${expected.eventLines.toLocaleString('en-US')} events) in ${flags.out} in ${((Date.now() - started) / 1000).toFixed(1)}s`,
      );
      ctx.out(
        ctx.style.dim(
          `  expect: songs ${expected.songs}, artists ${expected.artists}, users ${expected.users}, ` +
            `time ${expected.startTimes}, songplays ${expected.nextSongEvents}`,
        ),
      );
    });
}

function count(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError('must be a whole number');
  return n;
}

function share(value: string): number {
  const n = Number(value);
  if (!(n >= 0 && n <= 1)) throw new InvalidArgumentError('must be between 0 and 1');
  return n;
}
