/**
 * The issue-10 targets as the bench reports them: one line per target, PASS or MISS with the measured value and
 * the limit, or n/a when this run cannot measure it (say, the large-scale targets at `--scale target`).
 *
 * Other bench modes add their lines the same way: a module (e.g. bench/framework.ts behind `--framework`) returns
 * `TargetLine[]` and bench/sparkify.ts appends them to its list before `printTargets` (see the marked spot there).
 */
export interface TargetLine {
  /** The target, as the issue states it, e.g. "S3: wall ≤ 1.3 × lean request floor". */
  target: string;
  /** What this run measured, with the numbers it compares, e.g. "52.1 s = 1.14 × 45.6 s". */
  measured: string;
  /** The limit, e.g. "≤ 1.3 ×". */
  limit: string;
  /** Undefined: not measured in this run (`measured` says why). */
  pass: boolean | undefined;
}

/** A target compared as `value ≤ limit`. */
export function check(target: string, value: number, limit: number, measured: string, limitText: string): TargetLine {
  return { target, measured, limit: limitText, pass: value <= limit };
}

export function notMeasured(target: string, why: string, limit: string): TargetLine {
  return { target, measured: why, limit, pass: undefined };
}

export function verdict(line: TargetLine): 'PASS' | 'MISS' | 'n/a' {
  return line.pass === undefined ? 'n/a' : line.pass ? 'PASS' : 'MISS';
}

/** The lines, aligned: `PASS  <target>  <measured>  (limit <limit>)`. */
export function formatTargets(lines: readonly TargetLine[]): string {
  const width = Math.max(...lines.map((l) => l.target.length));
  return lines
    .map((l) => `${verdict(l).padEnd(4)}  ${l.target.padEnd(width)}  ${l.measured}  (limit ${l.limit})`)
    .join('\n');
}
