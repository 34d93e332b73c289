/**
 * `--workers N` for the bench: N tempoflow worker processes on one task queue, each with its own scratch folder
 * (TMPDIR, so its run cache and DuckDB scratch, as on separate hosts) and its own queue (TEMPOFLOW_OWN_TASK_QUEUE),
 * so tasks of one run spread over them and validate/publish can prefer the worker that built the tables.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

const root = join(import.meta.dirname, '..');

export interface BenchWorkers {
  processes: ChildProcess[];
  /** CPU seconds (user + system) of all workers so far. */
  cpuSeconds(): number;
  /** The largest resident set of any one worker now, in bytes. */
  maxRss(): number;
}

/** Starts `count` workers; worker i's scratch folder is `scratch(i)`. */
export async function startBenchWorkers(
  count: number,
  opts: { address: string; taskQueue: string; env: Record<string, string>; scratch: (i: number) => string },
): Promise<BenchWorkers> {
  const processes = await Promise.all(
    Array.from({ length: count }, (_, i) => {
      mkdirSync(opts.scratch(i), { recursive: true });
      return startWorker(opts.address, opts.taskQueue, {
        ...opts.env,
        TMPDIR: opts.scratch(i),
        TEMPOFLOW_OWN_TASK_QUEUE: '1',
      });
    }),
  );
  return {
    processes,
    cpuSeconds: () => processes.reduce((a, p) => a + cpuSecondsOf(p.pid), 0),
    maxRss: () => Math.max(...processes.map((p) => rssOf(p.pid))),
  };
}

function startWorker(address: string, taskQueue: string, env: Record<string, string>): Promise<ChildProcess> {
  const child = spawn(
    process.execPath,
    [join(root, 'bin/tempoflow.js'), 'worker', '--address', address, '--task-queue', taskQueue],
    { env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'pipe'] },
  );
  return new Promise((resolve, reject) => {
    child.stderr.on('data', (chunk: Buffer) => {
      if (chunk.toString().includes('tempoflow worker on')) resolve(child);
    });
    child.once('exit', (code) => reject(new Error(`a bench worker exited with ${code}`)));
  });
}

/** CPU seconds (user + system) of a process so far, from /proc (clock ticks of 1/100 s). */
function cpuSecondsOf(pid: number | undefined): number {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return 0;
  }
}

function rssOf(pid: number | undefined): number {
  try {
    const kb = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
    return Number(kb ?? 0) * 1024;
  } catch {
    return 0;
  }
}
