import type { DataInterval } from '../../core/types';
import type { Store } from '../../storage/store';
import { joinUri } from '../../storage/uri';
import { isHidden, logFileDate } from './list-inputs';

const DAY_MS = 86_400_000;

/** What the `wait_for_logs` sensor's check says (a `SensorCheck`). */
export interface LogsArrived {
  done: boolean;
  detail: string;
  output?: { days: number };
}

/**
 * Whether the input has a daily log file (`log_data/.../YYYY-MM-DD-events.json`) for every day of the data
 * interval, the days whose files the run's `list_inputs` reads. A run without an interval reads whatever is
 * there: nothing to wait for.
 */
export async function checkLogsArrived(args: {
  store: Store;
  input: string;
  dataInterval: DataInterval | null;
}): Promise<LogsArrived> {
  if (!args.dataInterval) return { done: true, detail: 'no data interval: the run reads all the input' };
  const start = Date.parse(args.dataInterval.start);
  const end = Date.parse(args.dataInterval.end);
  const days: number[] = [];
  for (let day = Math.ceil(start / DAY_MS) * DAY_MS; day < end; day += DAY_MS) days.push(day);
  const logDir = joinUri(args.input, 'log_data');
  const present = new Set(
    (await args.store.list(logDir))
      .filter((o) => !isHidden(o.key) && o.key.endsWith('.json'))
      .map((o) => logFileDate(o.key))
      .filter((d): d is number => d !== undefined),
  );
  const missing = days.filter((d) => !present.has(d)).map((d) => new Date(d).toISOString().slice(0, 10));
  if (missing.length) {
    const listed =
      missing.length > 5 ? `${missing.slice(0, 5).join(', ')} and ${missing.length - 5} more` : missing.join(', ');
    return {
      done: false,
      detail: `no log file yet for ${listed} (${missing.length} of ${days.length} days) under ${logDir}/`,
    };
  }
  return { done: true, detail: `log files for all ${days.length} days are there`, output: { days: days.length } };
}
