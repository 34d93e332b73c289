/** The run's details in the Temporal Web UI: a Markdown table of its tasks (pure). */
import type { DagRunStatus, TaskStatus } from '../core/types';

export function detailsMarkdown(status: DagRunStatus): string {
  const rows = status.tasks.map((t) => {
    const mapped = t.mapped ? ` (${t.mapped.total} mapped)` : '';
    const error = t.error ? t.error.message.replace(/\|/g, '\\|').replace(/\s+/g, ' ').slice(0, 120) : '';
    return `| ${t.taskId}${mapped} | ${t.state} | ${t.attempts} | ${error} |`;
  });
  return [
    `**${status.dagId}** · logical date ${status.logicalDate} · **${status.state}**`,
    '',
    '| task | state | attempts | error |',
    '| --- | --- | --- | --- |',
    ...rows,
    '',
    ...waitingLines(status),
    ...alertLines(status),
    // The log location is a worker setting the runner cannot see: say how to read the logs and where they sit.
    `task logs: \`tempoflow runs logs '${status.runId}'\` (in the workers' log location, under \`${status.runId}/\`)`,
  ].join('\n');
}

/** What scheduled tasks wait for (a pool's slots, a lock) and how each sensor is doing. */
function waitingLines(status: DagRunStatus): string[] {
  const lines = status.tasks.flatMap((t) => {
    const note = taskWaitNote(t);
    return note ? [`- ${t.taskId}: ${note.replace(/\s+/g, ' ').slice(0, 200)}`] : [];
  });
  return lines.length ? [...lines, ''] : [];
}

/** One line on what a task waits for, or how its sensor is doing; empty when there is nothing to tell. */
export function taskWaitNote(t: TaskStatus): string {
  if (t.state === 'scheduled' && t.waitingFor) return `waiting for ${t.waitingFor}`;
  const s = t.sensor;
  if (!s) return '';
  const checks = `sensor: ${s.checks} check${s.checks === 1 ? '' : 's'}`;
  const next = t.state === 'running' && s.nextCheckAt ? `, next at ${s.nextCheckAt}, gives up at ${s.timeoutAt}` : '';
  return `${checks}${next}${s.lastDetail ? `; last: ${s.lastDetail}` : ''}`;
}

function alertLines(status: DagRunStatus): string[] {
  const alerts = status.alerts;
  if (!alerts) return [];
  const lines = [
    `alerts sent: ${alerts.sent}${alerts.slaMissedAt ? ` · **SLA missed** at ${alerts.slaMissedAt}` : ''}`,
  ];
  for (const e of alerts.errors.slice(0, 5)) {
    lines.push(
      `- alert ${e.event}${e.taskId ? ` of ${e.taskId}` : ''}: ${e.callback} failed: ${e.message.replace(/\s+/g, ' ').slice(0, 120)}`,
    );
  }
  return [...lines, ''];
}
