/**
 * Alerts of a run: the DAG's and its tasks' `onFailure`, `onRetry`, `onSuccess` callbacks and the run SLA.
 *
 * The runner reports what happened (outcomes with the decisions they caused, and each step's task states); this
 * module turns it into alerts. Each alert is ONE framework activity (`tempoflowAlert`) that calls all its callbacks
 * on the worker and returns their errors: the history grows by one activity per alert whatever the number of
 * callbacks, the worker adds the Web UI link and holds the webhook URL (never the history), and a failing callback
 * cannot fail the run (its error is recorded in the run's status).
 *
 * Retries: the runner already drives each task's retries itself (one Temporal activity attempt per task attempt,
 * scheduler.ts), so a failed attempt that will be retried is visible here as an `attempt_failed` outcome followed
 * by a `retry_after` decision; no signal from the activity is needed and nothing is added to the history for tasks
 * without `onRetry`.
 *
 * Replay: every command added here (the alert activities, the SLA timer) is behind `patched(ALERTS_PATCH)`, asked
 * only when a DAG has alerts, so histories recorded before alerts existed replay unchanged.
 */
import { isCancellation, patched, proxyActivities, sleep } from '@temporalio/workflow';
import type {
  AlertEvent,
  DagRunInput,
  DagRunState,
  RunAlertsStatus,
  TaskAlert,
  TaskSnapshot,
  TaskState,
} from '../core/types';
import type { Decision, Outcome, RunState } from './scheduler';
import { describeError } from './task-instance';

export const ALERTS_PATCH = 'tempoflow-alerts';
export const ALERT_ACTIVITY = 'tempoflowAlert';
/** Errors of failed callbacks kept in the run's status. */
const MAX_RECORDED_ERRORS = 50;

export interface AlertRequest {
  callbacks: string[];
  alert: TaskAlert;
}

export interface AlertResult {
  errors: { callback: string; message: string }[];
}

function alertActivity(summary: string): (request: AlertRequest) => Promise<AlertResult> {
  return proxyActivities<Record<string, (request: AlertRequest) => Promise<AlertResult>>>({
    startToCloseTimeout: '1m',
    // Only the worker's own trouble (a crash, a timeout) is retried: callbacks' errors come back as results.
    retry: { maximumAttempts: 3, initialInterval: '1s' },
    summary,
  })[ALERT_ACTIVITY]!;
}

/**
 * Sends alerts and records what became of them in a status: one `tempoflowAlert` activity per alert, callbacks'
 * errors kept (the first `MAX_RECORDED_ERRORS`). Shared by the run and its map batches' child workflows.
 */
export class AlertSender {
  private readonly pending = new Set<Promise<void>>();

  constructor(readonly status: RunAlertsStatus) {}

  send(callbacks: readonly string[] | undefined, alert: TaskAlert): void {
    if (!callbacks?.length || !patched(ALERTS_PATCH)) return;
    this.status.sent++;
    const summary = `alert ${alert.event}${alert.taskId ? ` ${alert.taskId}` : ''}${alert.mapIndex !== undefined ? ` [${alert.mapIndex}]` : ''} → ${callbacks.join(', ')}`;
    const sending = alertActivity(summary)({ callbacks: [...callbacks], alert }).then(
      (result) => result.errors.forEach((e) => this.record(alert, e.callback, e.message)),
      (err: unknown) => {
        if (!isCancellation(err)) this.record(alert, callbacks.join(', '), describeError(err).message);
      },
    );
    this.pending.add(sending);
    void sending.finally(() => this.pending.delete(sending));
  }

  /** Adds what a map batch's own sender recorded. */
  merge(other: RunAlertsStatus): void {
    this.status.sent += other.sent;
    for (const e of other.errors) if (this.status.errors.length < MAX_RECORDED_ERRORS) this.status.errors.push(e);
  }

  /** Resolves once every alert sent so far (and any sent meanwhile) has been delivered or recorded as failed. */
  async drain(): Promise<void> {
    while (this.pending.size) await Promise.all([...this.pending]);
  }

  private record(alert: TaskAlert, callback: string, message: string): void {
    if (this.status.errors.length >= MAX_RECORDED_ERRORS) return;
    const { event, taskId } = alert;
    this.status.errors.push({ event, ...(taskId ? { taskId } : {}), callback, message });
  }
}

/** A retry alert for one attempt of a task instance that failed and will be retried. */
export function retryAlert(
  base: Pick<TaskAlert, 'dagId' | 'runId' | 'logicalDate'>,
  taskId: string,
  mapIndex: number | undefined,
  attempt: number | undefined,
  error: string,
): TaskAlert {
  return {
    event: 'retry',
    dagId: base.dagId,
    runId: base.runId,
    logicalDate: base.logicalDate,
    state: 'up_for_retry',
    taskId,
    ...(mapIndex !== undefined ? { mapIndex } : {}),
    ...(attempt !== undefined ? { attempt } : {}),
    error,
  };
}

export class RunAlerts {
  /** Sends the run's alerts and keeps their record (`run.status.alerts`); absent when the DAG has none. */
  private readonly sender?: AlertSender;
  private readonly lastStates = new Map<string, TaskState>();
  private readonly enabled: boolean;

  constructor(
    private readonly input: DagRunInput,
    private readonly run: RunState,
    private readonly now: () => string,
  ) {
    const { dag } = input;
    this.enabled = dag.alerts !== undefined || dag.tasks.some((t) => t.alerts !== undefined);
    if (!this.enabled) return;
    run.status.alerts = { sent: 0, errors: [] };
    this.sender = new AlertSender(run.status.alerts);
    for (const t of run.status.tasks) this.lastStates.set(t.taskId, t.state);
  }

  /** Starts the SLA's durable timer: when it fires before the run has ended, `onSlaMiss` is called once. */
  startSla(): void {
    const slaMs = this.input.dag.alerts?.slaMs;
    if (!this.enabled || slaMs === undefined || !patched(ALERTS_PATCH)) return;
    void sleep(slaMs).then(
      () => {
        if (this.run.status.state !== 'running') return;
        this.sender!.status.slaMissedAt = this.now();
        this.sender!.send(this.input.dag.alerts?.onSlaMiss, this.runAlert('sla_miss', 'running'));
      },
      () => undefined, // cancelled with the run
    );
  }

  /**
   * After an outcome is applied: a failed attempt followed by a retry timer is a retry; a finished map batch
   * brings the retry alerts its child workflow sent.
   */
  afterOutcome(outcome: Outcome, decisions: readonly Decision[]): void {
    if (!this.enabled) return;
    if (outcome.kind === 'batch_finished' && outcome.result.alerts) this.sender!.merge(outcome.result.alerts);
    if (outcome.kind !== 'attempt_failed') return;
    const { taskId, unit } = outcome;
    if (!decisions.some((d) => d.kind === 'retry_after' && d.taskId === taskId && d.unit === unit)) return;
    const task = this.task(taskId);
    const attempt = this.run.tasks.get(taskId)?.units[unit]?.status.attempts;
    this.sender!.send(
      // The snapshot's task callbacks include the DAG's `onRetry` (core/alerts.ts).
      task.alerts?.onRetry,
      retryAlert(this.run.status, taskId, task.map ? unit : undefined, attempt, outcome.error.message),
    );
  }

  /** After each step of the runner: tasks that failed or succeeded since the last step. */
  afterStep(): void {
    if (!this.enabled) return;
    for (const t of this.run.status.tasks) {
      if (this.lastStates.get(t.taskId) === t.state) continue;
      this.lastStates.set(t.taskId, t.state);
      if (t.state !== 'failed' && t.state !== 'success') continue;
      const alerts = this.task(t.taskId).alerts;
      this.sender!.send(t.state === 'failed' ? alerts?.onFailure : alerts?.onSuccess, {
        ...this.base(t.state === 'failed' ? 'failure' : 'success', t.state),
        taskId: t.taskId,
        attempt: t.attempts,
        ...(t.error ? { error: t.error.message } : {}),
      });
    }
  }

  /** The run ended: its own `onFailure`/`onSuccess`, then every alert still being sent. */
  async finish(state: DagRunState, failureMessage: string | undefined): Promise<void> {
    if (!this.enabled) return;
    this.afterStep();
    const alerts = this.input.dag.alerts;
    if (state === 'failed') {
      this.sender!.send(alerts?.onFailure, {
        ...this.runAlert('failure', state),
        error: failureMessage ?? 'the run failed',
      });
    } else if (state === 'success') this.sender!.send(alerts?.onSuccess, this.runAlert('success', state));
    await this.sender!.drain();
  }

  private task(taskId: string): TaskSnapshot {
    return this.run.tasks.get(taskId)!.task;
  }

  private base(event: AlertEvent, state: string): TaskAlert {
    const { status } = this.run;
    return { event, dagId: status.dagId, runId: status.runId, state, logicalDate: status.logicalDate };
  }

  private runAlert(event: AlertEvent, state: string): TaskAlert {
    return this.base(event, state);
  }
}
