/**
 * Stores that fail on purpose, for the crash-safety tests: the storage layer of a process that dies at its Nth
 * mutating call (a write, create, copy, move, rename or delete).
 */
import type { Store } from '../storage/store';

/** The calls that change storage; everything else only reads. */
export const MUTATING: readonly (keyof Store)[] = [
  'write',
  'createIfAbsent',
  'copy',
  'move',
  'delete',
  'deletePrefix',
  'renamePrefix',
  'uploadDir',
  'copyPrefix',
];

/** `inner` with `before(call, args)` run before each of its mutating calls (which it may delay or fail). */
export function beforeMutations(
  inner: Store,
  before: (call: keyof Store, args: unknown[]) => void | Promise<void>,
  /** Also run before the calls that only read. */
  readsToo = false,
): Store {
  return new Proxy(inner, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver) as unknown;
      const mutating = MUTATING.includes(prop as keyof Store);
      if (typeof value !== 'function' || !(mutating || readsToo)) return value;
      return async (...args: unknown[]) => {
        await before(prop as keyof Store, args);
        return (value as (...a: unknown[]) => Promise<unknown>).apply(target, args);
      };
    },
  });
}

export class InjectedCrash extends Error {
  override name = 'InjectedCrash';
}

export interface CrashingStore {
  store: Store;
  /** Mutating calls started so far (the one that crashed included). */
  readonly mutations: number;
  readonly crashed: boolean;
}

/**
 * A store that works until its `crashAt`-th mutating call (1-based; Infinity: never; the lease's renewals not
 * counted), which fails before it changes anything, and so does every call after it, reads included: as if the
 * process died right there.
 * Calls already in flight finish, as they would on a real server.
 */
export function crashingStore(inner: Store, crashAt = Infinity): CrashingStore {
  let mutations = 0;
  let crashed = false;
  const store = beforeMutations(
    inner,
    (call, args) => {
      // The lease's own writes come at times of their own (renewals), so they are not crash points; they fail
      // once the process has "died", like everything else.
      const counted = MUTATING.includes(call) && !String(args[0]).includes('/_state/lease/');
      if (counted && !crashed && ++mutations >= crashAt) crashed = true;
      if (crashed) throw new InjectedCrash(`injected crash at mutating call ${crashAt} (${String(call)})`);
    },
    true,
  );
  return {
    store,
    get mutations() {
      return mutations;
    },
    get crashed() {
      return crashed;
    },
  };
}
