import { inputOutputProblem } from '../activities/sparkify/locations';
import { sparkifySummary } from '../activities/sparkify/summary';
import { defineDag } from '../core/dag';

/**
 * The Sparkify data lake (replaces the Udacity "Data Lake with Spark" job): song and event JSON in, a star
 * schema of Parquet tables out. Tasks exchange URIs only (manifests, staged Parquet under
 * `<output>/_staging/<run>/`); nothing is published unless every table is built and passes the quality checks.
 *
 * Daily: a scheduled or backfilled run reads its day's log files and merges them into the lake (publish, one
 * run at a time per output); a run without an interval rebuilds the lake from all the input. Songs and artists
 * are rebuilt only when the song input changed since they were published (key, ETag and size of every file).
 */
export const sparkifyDag = defineDag({
  id: 'sparkify_etl',
  description: 'Builds the Sparkify star schema (songs, artists, users, time, songplays) from song and event JSON',
  // Alerts go to TEMPOFLOW_WEBHOOK_URL when the worker has it (else the notifier logs and sends nothing).
  onFailure: 'tempoflowWebhook',
  sla: '2h',
  onSlaMiss: 'tempoflowWebhook',
  params: {
    input: {
      type: 'string',
      location: true,
      default: 's3://udacity-dend',
      description: 'where song_data/ and log_data/ are (s3://bucket/prefix or a local directory)',
    },
    output: {
      type: 'string',
      location: true,
      required: true,
      description: 'the lake: s3://bucket/prefix or a local directory',
    },
    maxRejectRate: {
      type: 'number',
      default: 0.01,
      min: 0,
      max: 1,
      description: 'largest share of unreadable records (sent to _rejects/) before the run fails',
    },
    rebuildSongs: {
      type: 'boolean',
      default: false,
      description: 'rebuild songs and artists even when the song input is unchanged since they were published',
    },
    waitForLogs: {
      type: 'boolean',
      default: true,
      description: "wait (up to 6 h) for the interval's daily log files; false for backfills over days that have none",
    },
  },
  // Checked again by list_inputs, for runs a schedule or backfill starts.
  validateParams: ({ input, output }) => {
    const problem = typeof input === 'string' && typeof output === 'string' && inputOutputProblem(input, output);
    return problem ? [problem] : [];
  },
  // Rows per table, rejected records (rate, limit, where), the quality verdict and report.
  summary: sparkifySummary,
  schedule: { cron: '0 0 * * *' },
  // Storage outages are retried (bad data and access errors fail at once, non-retryable): 10 retries 5 s, 10 s,
  // 20 s, then every 30 s wait about 4 minutes in all, on top of the S3 client's own retries, so an S3 outage
  // of 2 minutes at any point of a run is ridden out with room to spare.
  defaults: {
    retries: 10,
    retryDelay: '5s',
    retryBackoff: 2,
    maxRetryDelay: '30s',
    executionTimeout: '1h',
    heartbeatTimeout: '2m',
  },
  tasks: [
    {
      // A scheduled day's log file may land after midnight: wait for it without holding a worker slot.
      id: 'wait_for_logs',
      activity: 'sparkifyWaitForLogs',
      sensor: { every: '5m', timeout: '6h' },
      description: "waits until the input has a log file for every day of the run's interval (at once without one)",
    },
    {
      id: 'list_inputs',
      activity: 'sparkifyListInputs',
      upstream: ['wait_for_logs'],
      description: 'lists input files into chunk manifests',
    },
    {
      id: 'stage_songs',
      activity: 'sparkifyStageSongs',
      map: { over: 'list_inputs', field: 'songChunks', maxActive: 8 },
      description: 'one chunk of song files to staging Parquet; bad records to _rejects/ (none: songs unchanged)',
    },
    {
      id: 'stage_logs',
      activity: 'sparkifyStageLogs',
      map: { over: 'list_inputs', field: 'logChunks', maxActive: 8 },
      description: 'one chunk of daily event files to staging Parquet; bad records to _rejects/',
    },
    // The build is three tasks so several workers share it: the song side, then each month of plays (mapped),
    // then users from every month (activities/sparkify/build-partitioned.ts).
    {
      id: 'build_songs',
      activity: 'sparkifyBuildSongs',
      upstream: ['stage_songs', 'stage_logs'],
      // A mapped task with no chunks (e.g. no log file in the interval) is skipped; the tables are still built.
      triggerRule: 'none_failed',
      executionTimeout: '3h',
      description: 'checks the reject rate; songs, artists and the song lookup; lists the months with plays',
    },
    {
      id: 'build_plays',
      activity: 'sparkifyBuildPlays',
      map: { over: 'build_songs', field: 'months', maxActive: 8 },
      executionTimeout: '3h',
      description: 'songplays, time and user_days of one month',
    },
    {
      id: 'build_tables',
      activity: 'sparkifyBuildTables',
      upstream: ['build_songs', 'build_plays'],
      // No month has plays (e.g. an interval without log files): build_plays is skipped, users is still built.
      triggerRule: 'none_failed',
      executionTimeout: '3h',
      description: 'users from every month; the star schema is complete under _staging/',
    },
    {
      id: 'validate',
      activity: 'sparkifyValidate',
      upstream: ['build_tables'],
      preferWorkerOf: 'build_tables',
      description: 'data quality checks',
    },
    {
      id: 'publish',
      activity: 'sparkifyPublish',
      preferWorkerOf: 'validate',
      upstream: ['validate'],
      // Two runs publishing to the same lake take turns.
      exclusiveBy: 'output',
      description: 'swaps the staged tables into the lake',
    },
  ],
});
