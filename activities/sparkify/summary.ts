/**
 * How a Sparkify run's outcome is told (the DAG's `summary` hook): what it read, the rows of every table, the
 * records it rejected and where they are, and the quality verdict with its report. Built from the run's final
 * status alone, so `runs show` tells it for any finished run, and a failed run says as much as it got to.
 */
import type { DagRunStatus, Json, RunSummary } from '../../core/types';
import type { ListInputsResult } from './list-inputs';
import { runPaths } from './paths';
import type { StageResult } from './stage';

interface Built {
  rows?: Record<string, number>;
  songsReusedFrom?: string | null;
}
interface Quality {
  passed: boolean;
  checks: { name: string; passed: boolean; detail?: string }[];
  report: string;
}

const count = (n: number) => n.toLocaleString('en-US');
const plural = (n: number, word: string) => `${count(n)} ${word}${n === 1 ? '' : 's'}`;
const percent = (x: number) => `${(x * 100).toFixed(2)}%`;
const asObject = <T>(v: Json | undefined): T | undefined =>
  v && typeof v === 'object' && !Array.isArray(v) ? (v as unknown as T) : undefined;

export function sparkifySummary(run: DagRunStatus): RunSummary {
  const output = typeof run.params.output === 'string' ? run.params.output : '';
  const limit = typeof run.params.maxRejectRate === 'number' ? run.params.maxRejectRate : 0.01;
  const paths = output ? runPaths(output, run.runId) : undefined;
  const listed = asObject<ListInputsResult>(run.outputs.list_inputs);
  const built = asObject<Built>(run.outputs.build_tables);
  const quality = asObject<Quality>(run.outputs.validate);
  const published = asObject<{ files: Record<string, number> }>(run.outputs.publish);
  const staged = ['stage_songs', 'stage_logs'].flatMap((id) => {
    const out = run.outputs[id];
    return (Array.isArray(out) ? out : []) as unknown as StageResult[];
  });

  const sections: RunSummary['sections'] = [];
  if (listed) {
    const rows = [
      {
        label: 'song files',
        value:
          listed.songChunks.length || !listed.songsReusedFrom
            ? count(listed.songFiles)
            : `unchanged since run ${listed.songsReusedFrom} (songs and artists kept)`,
      },
      {
        label: 'log files',
        value: `${count(listed.logFiles)}${listed.skippedLogFiles ? ` (${count(listed.skippedLogFiles)} outside the data interval left out)` : ''}`,
      },
      { label: 'bytes', value: count(listed.bytes) },
    ];
    sections.push({ title: 'Input', rows });
  }
  if (built?.rows) {
    const rows = Object.entries(built.rows).map(([table, n]) => ({
      label: table,
      value: `${plural(n, 'row')}${published?.files[table] !== undefined ? ` in ${plural(published.files[table], 'file')}` : ''}`,
    }));
    sections.push({ title: published ? `Tables published to ${output}` : 'Tables built (not published)', rows });
  }

  const records = staged.reduce((a, r) => a + r.records, 0);
  const rejected = staged.reduce((a, r) => a + r.rejected, 0);
  const rate = records + rejected === 0 ? 0 : rejected / (records + rejected);
  if (staged.length) {
    const rows = [
      {
        label: 'rejected',
        value: `${count(rejected)} of ${plural(records + rejected, 'record')} (${percent(rate)}; limit ${percent(limit)}${rate > limit ? ', over the limit' : ''})`,
      },
    ];
    if (rejected > 0 && paths) {
      const files = staged.filter((r) => r.rejects).length;
      rows.push({
        label: 'where',
        value: `${paths.rejects}/ (${plural(files, 'file')}, each line names its source file and line)`,
      });
    }
    sections.push({ title: 'Rejected records', rows });
  }
  if (quality) {
    const failed = quality.checks.filter((c) => !c.passed);
    sections.push({
      title: 'Quality checks',
      rows: [
        {
          label: 'verdict',
          value: quality.passed
            ? `passed (${quality.checks.length} checks)`
            : `FAILED: ${failed.map((c) => `${c.name}${c.detail ? ` (${c.detail})` : ''}`).join('; ')}`,
        },
        { label: 'report', value: quality.report },
      ],
    });
  }

  const plays = built?.rows?.songplays;
  if (run.state === 'success') {
    return {
      headline: `${run.dagId} published ${plays === undefined ? 'the lake' : `${count(plays)} plays`} to ${output}${rejected ? `; ${plural(rejected, 'record')} rejected` : ''}`,
      verdict: rejected ? 'warning' : 'ok',
      sections,
    };
  }
  const failedTask = run.tasks.find((t) => t.state === 'failed');
  return {
    headline: `${run.dagId} ${run.state}${failedTask ? ` at ${failedTask.taskId}` : ''}: nothing was published${run.state === 'running' || run.state === 'queued' ? ' yet' : ''}`,
    verdict: run.state === 'running' || run.state === 'queued' ? undefined : 'problem',
    sections,
  };
}
