/**
 * A DAG as a picture: Mermaid (renders in GitHub, GitLab, Notion and the Mermaid live editor) or Graphviz DOT.
 * With a run's status, each task is coloured by its state (a mapped task shows its instances' states).
 */
import type { DagRunStatus, DagSnapshot, TaskSnapshot, TaskState, TaskStatus } from '../core/types';

export const GRAPH_FORMATS = ['mermaid', 'dot'] as const;
export type GraphFormat = (typeof GRAPH_FORMATS)[number];

const STATE_COLOURS: Record<TaskState, string> = {
  waiting: '#eeeeee',
  scheduled: '#dde7f3',
  running: '#cfe2ff',
  up_for_retry: '#ffe8a1',
  success: '#c8e6c9',
  failed: '#f8c4c4',
  upstream_failed: '#f3d9b1',
  skipped: '#e0e0e0',
};

export function renderGraph(format: GraphFormat, dag: DagSnapshot, run?: DagRunStatus): string {
  return format === 'mermaid' ? toMermaid(dag, run) : toDot(dag, run);
}

function label(task: TaskSnapshot, status: TaskStatus | undefined): string[] {
  const lines = [task.id, task.activity];
  if (task.map) lines.push(`mapped over ${task.map.over}${task.map.field ? `.${task.map.field}` : ''}`);
  if (task.branch) lines.push('branch');
  if (task.triggerRule !== 'all_success') lines.push(`trigger: ${task.triggerRule}`);
  if (status) {
    const mapped = status.mapped;
    lines.push(
      mapped
        ? `${status.state} (${Object.entries(mapped.states)
            .map(([state, n]) => `${n} ${state}`)
            .join(', ')} of ${mapped.total})`
        : status.state,
    );
  }
  return lines;
}

function toMermaid(dag: DagSnapshot, run?: DagRunStatus): string {
  // Mermaid ids are restricted: use t0, t1, … and put the task id in the label.
  const ids = new Map(dag.tasks.map((t, i) => [t.id, `t${i}`]));
  const text = (s: string) => s.replace(/"/g, '#quot;');
  const lines = ['flowchart LR'];
  for (const task of dag.tasks) {
    const status = run?.tasks.find((t) => t.taskId === task.id);
    const body = `"${label(task, status).map(text).join('<br/>')}"`;
    const shape = task.branch ? `{${body}}` : task.map ? `[[${body}]]` : `[${body}]`;
    lines.push(`  ${ids.get(task.id)}${shape}`);
  }
  for (const task of dag.tasks) {
    for (const up of task.upstream) {
      // A dotted arrow: the task may run whatever this upstream's outcome (its trigger rule is not all_success).
      const arrow = task.triggerRule === 'all_success' ? '-->' : '-.->';
      lines.push(`  ${ids.get(up)} ${arrow} ${ids.get(task.id)}`);
    }
  }
  if (run) {
    for (const [state, colour] of Object.entries(STATE_COLOURS)) lines.push(`  classDef ${state} fill:${colour}`);
    for (const t of run.tasks) if (ids.has(t.taskId)) lines.push(`  class ${ids.get(t.taskId)} ${t.state}`);
  }
  return lines.join('\n');
}

function toDot(dag: DagSnapshot, run?: DagRunStatus): string {
  const quote = (s: string) => `"${s.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`;
  const lines = [
    `digraph ${quote(dag.id)} {`,
    '  rankdir=LR;',
    '  node [shape=box, style="rounded,filled", fillcolor=white];',
  ];
  for (const task of dag.tasks) {
    const status = run?.tasks.find((t) => t.taskId === task.id);
    const attrs = [`label=${quote(label(task, status).join('\n'))}`];
    if (task.branch) attrs.push('shape=diamond');
    else if (task.map) attrs.push('shape=box3d');
    if (status) attrs.push(`fillcolor=${quote(STATE_COLOURS[status.state])}`);
    lines.push(`  ${quote(task.id)} [${attrs.join(', ')}];`);
  }
  for (const task of dag.tasks) {
    for (const up of task.upstream) {
      const attrs = task.triggerRule === 'all_success' ? '' : ` [style=dashed, label=${quote(task.triggerRule)}]`;
      lines.push(`  ${quote(up)} -> ${quote(task.id)}${attrs};`);
    }
  }
  lines.push('}');
  return lines.join('\n');
}
