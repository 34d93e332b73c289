/**
 * The tail of an "unknown name" message: the closest known name when one is a likely typo (`(did you mean
 * 'extract'?)`), else the known names (at most `max`), else nothing.
 */
export function knownNames(name: string, known: readonly string[], max = 12): string {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of known) {
    const d = editDistance(name.toLowerCase(), candidate.toLowerCase());
    if (d < bestDistance) [best, bestDistance] = [candidate, d];
  }
  if (best !== undefined && bestDistance <= Math.max(1, Math.floor(name.length / 3)))
    return ` (did you mean '${best}'?)`;
  if (known.length === 0) return '';
  const shown = known.slice(0, max).join(', ');
  return ` (known: ${shown}${known.length > max ? `, … ${known.length - max} more` : ''})`;
}

/** Edit distance counting an insertion, a deletion, a substitution or a swap of two neighbours as one edit. */
function editDistance(a: string, b: string): number {
  const rows = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) rows[0]![j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const row = rows[i]!;
      const above = rows[i - 1]!;
      row[j] = Math.min(above[j]! + 1, row[j - 1]! + 1, above[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        row[j] = Math.min(row[j]!, rows[i - 2]![j - 2]! + 1);
      }
    }
  }
  return rows[a.length]![b.length]!;
}
