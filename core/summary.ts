/**
 * Run summaries: each DAG's `summary` hook, kept beside its snapshot (a function cannot travel in a run's input),
 * and the default summary for DAGs without one.
 */
import type { DagDefinition, DagRunStatus, DagSnapshot, Json, RunSummary } from './types';

type SummaryHook = NonNullable<DagDefinition['summary']>;

const hooks = new WeakMap<DagSnapshot, SummaryHook>();

/** Called by `defineDag`. */
export function registerSummary(dag: DagSnapshot, hook: SummaryHook): void {
  hooks.set(dag, hook);
}

/**
 * The summary of a run of `dag`: its hook's, or the default (the outputs of the tasks nothing depends on, in full).
 * A hook that throws (say, on the outputs of an older version of the DAG) gives the default, with the reason.
 */
export function summarizeRun(dag: DagSnapshot, status: DagRunStatus): RunSummary {
  const hook = hooks.get(dag);
  if (hook) {
    try {
      return hook(status);
    } catch (err) {
      const summary = defaultSummary(dag, status);
      summary.sections.push({
        title: 'Summary',
        rows: [{ label: 'unavailable', value: `the DAG's summary failed: ${(err as Error).message}` }],
      });
      return summary;
    }
  }
  return defaultSummary(dag, status);
}

function defaultSummary(dag: DagSnapshot, status: DagRunStatus): RunSummary {
  const finals = dag.tasks.filter((t) => !dag.tasks.some((d) => d.upstream.includes(t.id)));
  const rows = finals
    .filter((t) => t.id in status.outputs)
    .map((t) => ({ label: t.id, value: JSON.stringify(status.outputs[t.id] as Json) }));
  return {
    headline: `${dag.id}: ${status.state}`,
    verdict:
      status.state === 'success'
        ? 'ok'
        : status.state === 'running' || status.state === 'queued'
          ? undefined
          : 'problem',
    sections: rows.length ? [{ title: 'Outputs', rows }] : [],
  };
}
