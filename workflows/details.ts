/** The run's details in the Temporal Web UI: a Markdown table of its tasks (pure). */
import type { DagRunStatus } from '../core/types';

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
  ].join('\n');
}
