import { defineDag } from '../core/dag';

/** The framework's own example: fan-out over a mapped task, a retried flaky task, and a branch. */
export const exampleFanout = defineDag({
  id: 'example_fanout',
  description: 'Squares numbers in parallel, retries a flaky source, then branches on the total',
  // Alerts go to TEMPOFLOW_WEBHOOK_URL when the worker has it (else the notifier logs and sends nothing).
  onFailure: 'tempoflowWebhook',
  params: {
    count: { type: 'integer', default: 10, min: 0, max: 100_000, description: 'how many numbers to square' },
    threshold: { type: 'integer', default: 500, description: 'totals above this take the big report' },
    flakyFailures: { type: 'integer', default: 2, min: 0, max: 10, description: 'attempts flaky_fetch fails first' },
  },
  defaults: { retries: 0, executionTimeout: '1m' },
  tasks: [
    { id: 'plan', activity: 'examplePlan' },
    { id: 'square', activity: 'exampleSquare', map: { over: 'plan', maxActive: 8 } },
    { id: 'flaky_fetch', activity: 'exampleFlakyFetch', retries: 3, retryDelay: '200ms', retryBackoff: 2 },
    { id: 'choose_report', activity: 'exampleChooseReport', upstream: ['square', 'flaky_fetch'], branch: true },
    { id: 'report_big', activity: 'exampleReport', upstream: ['choose_report'] },
    { id: 'report_small', activity: 'exampleReport', upstream: ['choose_report', 'square'] },
    {
      id: 'summary',
      activity: 'exampleSummary',
      upstream: ['report_big', 'report_small'],
      triggerRule: 'none_failed_min_one_success',
    },
  ],
});
