/** `tempoflow dags list` and `tempoflow dags show <dag>`. */
import { Option } from 'commander';
import type { Command } from 'commander';
import type { DagSnapshot, ParamSpec, TaskSnapshot } from '../../core/types';
import type { CliContext } from '../context';
import { GRAPH_FORMATS, renderGraph } from '../graph';
import type { GraphFormat } from '../graph';
import { formatDuration, formatMsDuration, table, truncate } from '../render';
import type { Style } from '../render';

export function register(program: Command, ctx: CliContext): void {
  const group = program.command('dags').description('list the DAGs this project defines and show their tasks');

  group
    .command('list')
    .description('list DAGs: id, number of tasks, schedule, description')
    .option('--json', 'print the DAG snapshots as JSON')
    .action((opts: { json?: boolean }) => {
      const { dags } = ctx.project();
      if (opts.json) return ctx.json(dags);
      const rows = dags.map((d) => [ctx.style.bold(d.id), String(d.tasks.length), formatSchedule(d), d.description]);
      ctx.out(table(['dag', 'tasks', 'schedule', 'description'], rows, ctx.style));
    });

  group
    .command('show')
    .description('show a DAG: params, tasks and how they depend on each other')
    .argument('<dag>', 'DAG id (see `tempoflow dags list`)')
    .option('--json', 'print the DAG snapshot as JSON')
    .addOption(
      new Option('--format <format>', 'text, or the graph as Mermaid or Graphviz DOT')
        .choices(['text', ...GRAPH_FORMATS])
        .default('text'),
    )
    .action((dagId: string, opts: { json?: boolean; format: 'text' | GraphFormat }) => {
      const dag = ctx.getDag(dagId);
      if (opts.json) return ctx.json(dag);
      if (opts.format !== 'text') return ctx.out(renderGraph(opts.format, dag));
      ctx.out(renderDag(dag, ctx.style));
    });
}

export function formatSchedule(dag: DagSnapshot): string {
  if (dag.schedule?.cron) return `cron ${dag.schedule.cron}`;
  if (dag.schedule?.everyMs) return `every ${formatMsDuration(dag.schedule.everyMs)}`;
  return 'none';
}

/** The plain-text description of a DAG that `dags show` prints. */
export function renderDag(dag: DagSnapshot, style: Style): string {
  const out: string[] = [];
  out.push(`${style.bold(dag.id)}${dag.description ? `  ${style.dim('—')} ${dag.description}` : ''}`);
  out.push(
    style.dim(`schedule: ${formatSchedule(dag)} · max active tasks: ${dag.maxActiveTasks} · ${dag.tasks.length} tasks`),
  );

  out.push('', style.bold('Params'));
  const params = Object.entries(dag.params);
  if (!params.length) out.push(style.dim('  (none)'));
  else {
    const rows = params.map(([name, spec]) => [
      name,
      spec.type === 'string' && spec.location ? 'location' : spec.type,
      spec.default !== undefined
        ? JSON.stringify(spec.default)
        : spec.required
          ? style.yellow('required')
          : style.dim('—'),
      constraints(spec),
      spec.description ?? '',
    ]);
    out.push(table(['name', 'type', 'default', 'allowed', 'description'], rows, style, { indent: 2 }));
  }

  out.push('', style.bold('Tasks'));
  const rows = dag.tasks.map((t) => [
    t.id,
    t.activity,
    t.upstream.length ? t.upstream.join(', ') : style.dim('—'),
    t.triggerRule === 'all_success' ? style.dim(t.triggerRule) : style.yellow(t.triggerRule),
    t.retry.maxAttempts > 1
      ? `${t.retry.maxAttempts - 1} (${formatMsDuration(t.retry.initialDelayMs)}×${t.retry.backoffCoefficient})`
      : style.dim('0'),
    formatMsDuration(t.executionTimeoutMs),
    kind(t),
  ]);
  out.push(
    table(['task', 'activity', 'upstream', 'trigger rule', 'retries', 'timeout', 'kind'], rows, style, { indent: 2 }),
  );

  out.push('', style.bold('Graph'));
  out.push(...renderTree(dag, style).map((l) => `  ${l}`));

  const described = dag.tasks.filter((t) => t.description);
  if (described.length) {
    out.push('', style.bold('Task descriptions'));
    for (const t of described) out.push(`  ${t.id}: ${truncate(t.description ?? '', 200)}`);
  }
  return out.join('\n');
}

function constraints(spec: ParamSpec): string {
  const parts: string[] = [];
  if (spec.type === 'string') {
    if (spec.enum) parts.push(spec.enum.join(' | '));
    if (spec.pattern) parts.push(`/${spec.pattern}/`);
  } else if (spec.type === 'integer' || spec.type === 'number') {
    if (spec.min !== undefined && spec.max !== undefined) parts.push(`${spec.min}..${spec.max}`);
    else if (spec.min !== undefined) parts.push(`≥ ${spec.min}`);
    else if (spec.max !== undefined) parts.push(`≤ ${spec.max}`);
  } else parts.push('true | false');
  return parts.join(' ');
}

function kind(t: TaskSnapshot): string {
  const parts: string[] = [];
  if (t.map) {
    parts.push(`mapped over ${t.map.over}${t.map.field ? `.${t.map.field}` : ''} (max ${t.map.maxActive} at once)`);
  }
  if (t.branch) parts.push('branch');
  if (t.sensor) {
    const { everyMs, timeoutMs, softFail } = t.sensor;
    parts.push(
      `sensor every ${formatDuration(everyMs)}, up to ${formatDuration(timeoutMs)}${softFail ? ', then skipped' : ''}`,
    );
  }
  if (t.localActivity) parts.push('local activity');
  if (t.pool) parts.push(`pool ${t.pool.name}${t.pool.slots > 1 ? ` (${t.pool.slots} slots)` : ''}`);
  if (t.exclusiveBy) parts.push(`one at a time per ${t.exclusiveBy}`);
  if (t.preferWorkerOf) parts.push(`prefers ${t.preferWorkerOf}'s worker`);
  if (t.taskQueue) parts.push(`queue ${t.taskQueue}`);
  return parts.join(', ');
}

/**
 * The DAG as an indented tree from its root tasks. A task with several upstream tasks appears under the first
 * and is referenced (`↑ see above`) under the others, so each task is expanded once.
 */
export function renderTree(dag: DagSnapshot, style: Style): string[] {
  const children = new Map<string, TaskSnapshot[]>(dag.tasks.map((t) => [t.id, []]));
  for (const t of dag.tasks) for (const up of t.upstream) children.get(up)?.push(t);
  const expanded = new Set<string>();
  const lines: string[] = [];
  const label = (t: TaskSnapshot) => {
    const tags: string[] = [];
    if (t.map) tags.push(`[mapped over ${t.map.over}]`);
    if (t.branch) tags.push('[branch]');
    if (t.triggerRule !== 'all_success') tags.push(`[${t.triggerRule}]`);
    if (t.upstream.length > 1) tags.push(style.dim(`← ${t.upstream.join(', ')}`));
    return [t.id, ...tags.map((tag) => (tag.startsWith('[') ? style.cyan(tag) : tag))].join(' ');
  };
  const walk = (t: TaskSnapshot, prefix: string, last: boolean, root: boolean) => {
    const branch = root ? '' : last ? '└── ' : '├── ';
    if (expanded.has(t.id)) {
      lines.push(`${prefix}${branch}${t.id} ${style.dim('↑ see above')}`);
      return;
    }
    expanded.add(t.id);
    lines.push(`${prefix}${branch}${label(t)}`);
    const kids = children.get(t.id) ?? [];
    const childPrefix = root ? prefix : prefix + (last ? '    ' : '│   ');
    kids.forEach((k, i) => walk(k, childPrefix, i === kids.length - 1, false));
  };
  for (const root of dag.tasks.filter((t) => t.upstream.length === 0)) walk(root, '', true, true);
  return lines;
}
