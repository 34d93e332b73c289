/**
 * Alert callbacks and the run SLA as a DAG declares them (`onFailure`, `onRetry`, `onSuccess`, `sla`, `onSlaMiss`),
 * and what the snapshot carries of them. Callbacks are activity names: the DAG is plain data sent to the runner.
 */
import { z } from 'zod';
import { durationToMs } from './duration';
import { DagDefinitionError } from './errors';
import type { AlertCallbacks, Duration, RunAlertCallbacks, TaskAlertCallbacks } from './types';

/** The webhook notifier every worker registers (a Slack-compatible POST to `TEMPOFLOW_WEBHOOK_URL`). */
export const WEBHOOK_NOTIFIER = 'tempoflowWebhook';

const activityName = z.string().regex(/^[A-Za-z_$][A-Za-z0-9_$]*$/, 'must be an activity name');
const callbacks = z.union([activityName, z.array(activityName).min(1, 'must name at least one activity')]);

/** Alert options of a task (and of the DAG's `defaults`). */
export const taskAlertShape = {
  onFailure: callbacks.optional(),
  onRetry: callbacks.optional(),
  onSuccess: callbacks.optional(),
};

const duration = z.union([z.number().nonnegative(), z.string().min(1)]);

/** Alert options of the DAG itself. */
export const dagAlertShape = {
  ...taskAlertShape,
  sla: duration.optional(),
  onSlaMiss: callbacks.optional(),
};

const list = (value: AlertCallbacks | undefined): string[] | undefined =>
  value === undefined ? undefined : [...new Set(typeof value === 'string' ? [value] : value)];

/** A task's callbacks in the snapshot: its own or the DAG's defaults; retries also call the DAG's `onRetry`. */
export function taskAlerts(
  task: { onFailure?: AlertCallbacks; onRetry?: AlertCallbacks; onSuccess?: AlertCallbacks },
  defaults: { onFailure?: AlertCallbacks; onRetry?: AlertCallbacks; onSuccess?: AlertCallbacks },
  dagOnRetry: AlertCallbacks | undefined,
): TaskAlertCallbacks | undefined {
  const alerts: TaskAlertCallbacks = {};
  const onFailure = list(task.onFailure ?? defaults.onFailure);
  const onSuccess = list(task.onSuccess ?? defaults.onSuccess);
  const ownRetry = list(task.onRetry ?? defaults.onRetry) ?? [];
  const onRetry = [...new Set([...ownRetry, ...(list(dagOnRetry) ?? [])])];
  if (onFailure) alerts.onFailure = onFailure;
  if (onSuccess) alerts.onSuccess = onSuccess;
  if (onRetry.length) alerts.onRetry = onRetry;
  return Object.keys(alerts).length ? alerts : undefined;
}

/** The run's callbacks and SLA in the snapshot; absent when the DAG sets none (older snapshots look the same). */
export function runAlerts(
  dag: {
    onFailure?: AlertCallbacks;
    onSuccess?: AlertCallbacks;
    onRetry?: AlertCallbacks;
    sla?: Duration;
    onSlaMiss?: AlertCallbacks;
  },
  dagLabel: string,
): RunAlertCallbacks | undefined {
  const alerts: RunAlertCallbacks = {};
  const onFailure = list(dag.onFailure);
  const onSuccess = list(dag.onSuccess);
  const onSlaMiss = list(dag.onSlaMiss);
  const onRetry = list(dag.onRetry);
  if (onFailure) alerts.onFailure = onFailure;
  if (onSuccess) alerts.onSuccess = onSuccess;
  if (onSlaMiss) alerts.onSlaMiss = onSlaMiss;
  if (onRetry) alerts.onRetry = onRetry;
  if (dag.sla !== undefined) {
    let slaMs: number;
    try {
      slaMs = durationToMs(dag.sla, 'sla');
    } catch (cause) {
      throw new DagDefinitionError(`${dagLabel}: ${(cause as Error).message}`, { cause });
    }
    if (slaMs <= 0) throw new DagDefinitionError(`${dagLabel}: sla must be positive`);
    alerts.slaMs = slaMs;
  }
  if (onSlaMiss && alerts.slaMs === undefined) {
    throw new DagDefinitionError(`${dagLabel}: onSlaMiss needs an sla (how long a run may take)`);
  }
  return Object.keys(alerts).length ? alerts : undefined;
}

/** Every activity a DAG's alerts call, with where it is named (for the worker's check at start). */
export function alertActivities(dag: {
  id: string;
  alerts?: RunAlertCallbacks;
  tasks: readonly { id: string; alerts?: TaskAlertCallbacks }[];
}): { name: string; where: string }[] {
  const found: { name: string; where: string }[] = [];
  const add = (where: string, alerts: Record<string, unknown> | undefined) => {
    for (const [key, names] of Object.entries(alerts ?? {})) {
      if (Array.isArray(names)) for (const name of names as string[]) found.push({ name, where: `${where} ${key}` });
    }
  };
  add(`DAG '${dag.id}'`, dag.alerts as Record<string, unknown> | undefined);
  for (const task of dag.tasks) add(`DAG '${dag.id}', task '${task.id}'`, task.alerts as Record<string, unknown>);
  return found;
}
