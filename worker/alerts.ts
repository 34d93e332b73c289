/**
 * The worker's side of alerts: the `tempoflowAlert` activity the runner starts once per alert (it calls the alert's
 * callbacks, which are the project's activities or the built-in webhook notifier, and returns their errors instead
 * of failing), and the webhook notifier itself. The webhook URL and the Web UI address come from the worker's
 * environment, so neither is ever in a workflow's input, history or the task logs.
 */
import { Context, log } from '@temporalio/activity';
import { WEBHOOK_NOTIFIER } from '../core/alerts';
import type { ActivityRecord, TaskAlert } from '../core/types';
import type { AlertRequest, AlertResult } from '../workflows/alerts';
import { ALERT_ACTIVITY } from '../workflows/alerts';

export const WEBHOOK_URL_ENV = 'TEMPOFLOW_WEBHOOK_URL';
/** The Web UI's address, as the CLI reads it: alerts link to the run when it is set. */
export const UI_URL_ENV = 'TEMPORAL_UI_URL';
const WEBHOOK_TIMEOUT_MS = 10_000;

const ICONS: Record<TaskAlert['event'], string> = {
  failure: ':red_circle:',
  retry: ':warning:',
  success: ':large_green_circle:',
  sla_miss: ':hourglass:',
};

/** One line for people: what happened to which run or task. */
export function alertText(alert: TaskAlert): string {
  const what = alert.taskId
    ? `task ${alert.taskId}${alert.mapIndex !== undefined ? ` [${alert.mapIndex}]` : ''}`
    : `run ${alert.runId}`;
  const verb = {
    failure: 'failed',
    retry: `failed attempt ${alert.attempt ?? '?'} and will be retried`,
    success: 'succeeded',
    sla_miss: 'has missed its SLA and is still running',
  }[alert.event];
  const where = alert.taskId ? ` in run ${alert.runId}` : '';
  const error = alert.error ? `: ${alert.error}` : '';
  const link = alert.url ? ` · ${alert.url}` : '';
  return `${ICONS[alert.event]} DAG ${alert.dagId}: ${what}${where} ${verb}${error}${link}`;
}

/**
 * The built-in notifier: a Slack-compatible JSON POST (`{ text, alert }`) to `TEMPOFLOW_WEBHOOK_URL`. Without the
 * variable it logs that nothing was sent and returns, so DAGs can name it whether or not a worker configures it.
 */
export function webhookNotifier(env: NodeJS.ProcessEnv = process.env): (alert: TaskAlert) => Promise<void> {
  return async (alert: TaskAlert) => {
    const url = env[WEBHOOK_URL_ENV];
    if (!url) {
      log.info(`${WEBHOOK_URL_ENV} is not set: alert not sent`, { event: alert.event });
      return;
    }
    let response: Response;
    try {
      response = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ text: alertText(alert), alert }),
        signal: AbortSignal.timeout(WEBHOOK_TIMEOUT_MS),
      });
    } catch (err) {
      // The message of a failed fetch may carry the URL (which can hold a token): name the variable instead.
      throw new Error(`webhook (${WEBHOOK_URL_ENV}) unreachable: ${hideUrl((err as Error).message, url)}`);
    }
    await response.body?.cancel();
    if (!response.ok) throw new Error(`webhook (${WEBHOOK_URL_ENV}) answered HTTP ${response.status}`);
  };
}

function hideUrl(message: string, url: string): string {
  return message.split(url).join(`<${WEBHOOK_URL_ENV}>`);
}

/** The alert activity and the notifier, for the worker to register beside the project's activities. */
export function createAlertActivities(activities: ActivityRecord, env: NodeJS.ProcessEnv = process.env) {
  const notify = webhookNotifier(env);
  const callbacks: Record<string, (alert: TaskAlert) => Promise<unknown>> = {
    ...(activities as Record<string, (alert: TaskAlert) => Promise<unknown>>),
    [WEBHOOK_NOTIFIER]: notify,
  };
  return {
    [WEBHOOK_NOTIFIER]: notify,
    /** Calls every callback of one alert, one after the other; their errors are returned, never thrown. */
    [ALERT_ACTIVITY]: async ({ callbacks: names, alert }: AlertRequest): Promise<AlertResult> => {
      const ui = env[UI_URL_ENV]?.replace(/\/+$/, '');
      const { info } = Context.current();
      const namespace = info.workflowNamespace ?? info.activityNamespace;
      const withLink: TaskAlert = ui
        ? {
            ...alert,
            url: `${ui}/namespaces/${encodeURIComponent(namespace)}/workflows/${encodeURIComponent(alert.runId)}`,
          }
        : alert;
      const errors: AlertResult['errors'] = [];
      for (const name of names) {
        const callback = callbacks[name];
        try {
          if (typeof callback !== 'function') throw new Error(`no activity named '${name}' is registered`);
          await callback(withLink);
        } catch (err) {
          const message = err instanceof Error ? err.message : String(err);
          const secret = env[WEBHOOK_URL_ENV];
          errors.push({ callback: name, message: secret ? hideUrl(message, secret) : message });
        }
      }
      return { errors };
    },
  };
}
