/**
 * Runs `fn` over `items` with at most `limit` calls in flight; results keep the input order. On the first error
 * no new call starts, and the error is thrown once the calls in flight have settled: nothing started by
 * `mapLimit` is still running when it returns or throws (callers clean up after a failure).
 */
export async function mapLimit<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T, index: number) => Promise<R>,
  signal?: AbortSignal,
): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  let failure: { error: unknown } | undefined;
  async function worker(): Promise<void> {
    while (!failure && next < items.length) {
      const i = next++;
      try {
        signal?.throwIfAborted();
        results[i] = await fn(items[i] as T, i);
      } catch (error) {
        failure ??= { error }; // the first error is the one reported
      }
    }
  }
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, () => worker()));
  if (failure) throw failure.error;
  return results;
}
