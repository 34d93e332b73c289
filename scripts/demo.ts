/**
 * `npm run demo`: the Sparkify job end to end on this machine. Starts a Temporal dev server (with its Web UI)
 * and a worker, generates Sparkify data in the Udacity layout, runs `sparkify_etl` into ./lake, and prints the
 * tables' row counts, the quality report and the run's Web UI URL. On a terminal it then keeps the server up
 * for browsing until Ctrl-C.
 */
import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { DefaultLogger, NativeConnection, Runtime } from '@temporalio/worker';
import { createActivities } from '../activities';
import { generateSparkify } from '../activities/sparkify/generate';
import { triggerDagRun } from '../client/runs';
import { styleFor } from '../client/render';
import { watchRun } from '../client/watch';
import type { DagRunStatus } from '../core/types';
import { getDag } from '../dags';
import { startDevServer } from '../services/dev-server';
import { createTempoflowWorker } from '../worker/create-worker';

// The locked AWS SDK supports Node 20; its notice about 2027 releases is noise here.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
const root = join(import.meta.dirname, '..');
const input = join(root, '.tempoflow', 'demo-input');
const output = join(root, 'lake');
const style = styleFor(process.stdout);
const say = (line: string) => console.log(line);

Runtime.install({
  logger: new DefaultLogger('ERROR'),
  telemetryOptions: { logging: { filter: { core: 'ERROR', other: 'ERROR' } } },
});

say(style.bold('tempoflow demo: the Sparkify data lake'));
const server = await startDevServer({ preferDefaultPorts: true, log: say });
say(`  Temporal dev server ${server.address}, Web UI ${server.uiUrl}`);
const taskQueue = 'tempoflow-demo';
const worker = await createTempoflowWorker({
  connection: await NativeConnection.connect({ address: server.address }),
  taskQueue,
  dags: [getDag('sparkify_etl')],
  activities: createActivities(),
});
const workerRun = worker.run();
const connection = await Connection.connect({ address: server.address });
const client = new Client({ connection });

let status: DagRunStatus | undefined;
try {
  if (!existsSync(join(input, 'log_data'))) {
    say('  generating Sparkify data (2,000 songs, 60,000 events over 30 days) into .tempoflow/demo-input ...');
    await generateSparkify({ out: input, songs: 2000, events: 60_000, days: 30, seed: 42 });
  }
  rmSync(output, { recursive: true, force: true });
  const run = await triggerDagRun(client, getDag('sparkify_etl'), { taskQueue, params: { input, output } });
  status = await watchRun(client, run.handle, {
    stream: process.stdout,
    style,
    mode: process.stdout.isTTY ? 'live' : 'lines',
    taskQueue,
  });
  const built = status.outputs.build_tables as
    { rows?: Record<string, number>; songsReusedFrom?: string | null; rejects?: { message: string } } | undefined;
  const quality = status.outputs.validate as
    { passed: boolean; checks: { name: string; passed: boolean; detail: string }[] } | undefined;
  say('');
  say(style.bold(`run ${status.state}: ${status.runId}`));
  if (built?.rows) {
    say(style.bold('tables in ./lake'));
    if (built.songsReusedFrom)
      say(`  songs, artists kept: the song input is unchanged since run ${built.songsReusedFrom}`);
    for (const [table, rows] of Object.entries(built.rows))
      say(`  ${table.padEnd(10)} ${rows.toLocaleString('en-US').padStart(8)} rows`);
    if (built.rejects) say(`  rejects: ${built.rejects.message}`);
  }
  if (quality) {
    say(
      style.bold(
        `quality report (lake/_runs/${status.runId.replace(/:/g, '_')}/quality.json): ${quality.passed ? 'passed' : 'FAILED'}`,
      ),
    );
    for (const check of quality.checks)
      say(`  ${check.passed ? style.green('✔') : style.red('✘')} ${check.name}: ${style.dim(check.detail)}`);
  }
  say('');
  say(`Web UI: ${server.uiUrl}/namespaces/default/workflows/${encodeURIComponent(status.runId)}`);
  if (process.stdout.isTTY && process.stdin.isTTY) {
    say(style.dim('the server stays up for the Web UI: press Ctrl-C to stop'));
    await new Promise<void>((resolve) => process.once('SIGINT', () => resolve()));
  }
} finally {
  worker.shutdown();
  await workerRun;
  await connection.close();
  await server.stop();
}
process.exit(status?.state === 'success' ? 0 : 1);
