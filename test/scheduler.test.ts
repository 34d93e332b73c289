/** The runner's scheduling, without a server: the pure state machine the runner workflow loops over. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { defineDag } from '../core/dag';
import { checkOutputSize, MAX_OUTPUT_BYTES, utf8ByteLength } from '../core/task-output';
import type { DagDefinition, Json, TaskState } from '../core/types';
import { applyOutcome, cancelRun, createRunState, finishRun, nextDecisions, readyTasks } from '../workflows/scheduler';
import type { Decision, RunState } from '../workflows/scheduler';

const NOW = '2024-01-01T00:00:00.000Z';
const LIMITS = { mapInlineLimit: 200, mapBatchSize: 500 };

function start(def: DagDefinition, reuse?: Record<string, Json>): { run: RunState; decisions: Decision[] } {
  const run = createRunState(
    { dag: defineDag(def), params: {}, logicalDate: NOW, dataInterval: null, ...(reuse ? { reuse } : {}) },
    'run-1',
    NOW,
    LIMITS,
  );
  return { run, decisions: nextDecisions(run, NOW) };
}

/** What the workflow would do, in order: `start a`, `start m[3]`, `retry a 100`, `lock p`, `release p`, ... */
function commands(decisions: Decision[]): string[] {
  return decisions.flatMap((d) => {
    switch (d.kind) {
      case 'start_attempt':
        return [`start ${d.taskId}${d.ctx.mapIndex === undefined ? '' : `[${d.ctx.mapIndex}]`}#${d.ctx.attempt}`];
      case 'start_batch':
        return [`batch ${d.taskId}-${d.unit} ${d.input.firstIndex}+${d.input.items.length}/${d.input.maxActive}`];
      case 'retry_after':
        return [`retry ${d.taskId}[${d.unit}] ${d.delayMs}`];
      case 'request_lock':
        return [`lock ${d.taskId}`];
      case 'release_lock':
        return [`release ${d.taskId}`];
      case 'finish_run':
        return [`finish ${d.state}`];
      default:
        return [];
    }
  });
}

function succeed(run: RunState, taskId: string, output: Json = null, unit = 0): string[] {
  return commands([
    ...applyOutcome(run, { kind: 'attempt_succeeded', taskId, unit, output }, NOW),
    ...nextDecisions(run, NOW),
  ]);
}

function fail(run: RunState, taskId: string, unit = 0, nonRetryable = false): string[] {
  return commands([
    ...applyOutcome(
      run,
      { kind: 'attempt_failed', taskId, unit, error: { message: `boom ${unit}` }, nonRetryable },
      NOW,
    ),
    ...nextDecisions(run, NOW),
  ]);
}

const stateOf = (run: RunState, taskId: string): TaskState => run.status.tasks.find((t) => t.taskId === taskId)!.state;

const states = (run: RunState) => Object.fromEntries(run.status.tasks.map((t) => [t.taskId, t.state]));

describe('scheduler', () => {
  it('runs a diamond: the fan-out together, the fan-in after both, with upstream outputs', () => {
    const { run, decisions } = start({
      id: 'diamond',
      tasks: [
        { id: 'a', activity: 'x' },
        { id: 'b', activity: 'x', upstream: ['a'] },
        { id: 'c', activity: 'x', upstream: ['a'] },
        { id: 'd', activity: 'x', upstream: ['b', 'c'] },
      ],
    });
    assert.deepEqual(commands(decisions), ['start a#1']);
    assert.deepEqual(states(run), { a: 'running', b: 'waiting', c: 'waiting', d: 'waiting' });
    assert.deepEqual(succeed(run, 'a', 'A'), ['start b#1', 'start c#1']);
    assert.deepEqual(succeed(run, 'c', 'C'), []);
    const last = [...applyOutcome(run, { kind: 'attempt_succeeded', taskId: 'b', unit: 0, output: 'B' }, NOW)];
    const next = nextDecisions(run, NOW);
    assert.deepEqual(commands([...last, ...next]), ['start d#1']);
    const d = next.find((x) => x.kind === 'start_attempt')!;
    assert.equal(d.kind === 'start_attempt' && JSON.stringify(d.ctx.upstream), JSON.stringify({ b: 'B', c: 'C' }));
    assert.deepEqual(succeed(run, 'd', 'D'), ['finish success']);
    assert.deepEqual(finishRun(run, NOW), { state: 'success' });
    assert.deepEqual(run.status.outputs, { a: 'A', b: 'B', c: 'C', d: 'D' });
  });

  it('applies each trigger rule to one succeeded and one failed upstream task', () => {
    const rules = [
      'all_success',
      'all_done',
      'all_failed',
      'one_success',
      'one_failed',
      'none_failed',
      'none_failed_min_one_success',
      'always',
    ] as const;
    const { run, decisions } = start({
      id: 'rules',
      tasks: [
        { id: 'ok', activity: 'x' },
        { id: 'bad', activity: 'x' },
        ...rules.map((rule) => ({ id: rule, activity: 'x', upstream: ['ok', 'bad'], triggerRule: rule })),
      ],
    });
    assert.deepEqual(commands(decisions), ['start ok#1', 'start bad#1', 'start always#1']);
    assert.deepEqual(succeed(run, 'ok'), ['start one_success#1']);
    assert.deepEqual(fail(run, 'bad'), ['start all_done#1', 'start one_failed#1']);
    assert.deepEqual(states(run), {
      ok: 'success',
      bad: 'failed',
      all_success: 'upstream_failed',
      all_done: 'running',
      all_failed: 'skipped',
      one_success: 'running',
      one_failed: 'running',
      none_failed: 'upstream_failed',
      none_failed_min_one_success: 'upstream_failed',
      always: 'running',
    });
  });

  it('skips the tasks a branch did not choose, and what depends only on them', () => {
    const { run } = start({
      id: 'branch',
      tasks: [
        { id: 'choose', activity: 'x', branch: true },
        { id: 'left', activity: 'x', upstream: ['choose'] },
        { id: 'right', activity: 'x', upstream: ['choose'] },
        { id: 'after_right', activity: 'x', upstream: ['right'] },
        { id: 'join', activity: 'x', upstream: ['left', 'right'], triggerRule: 'none_failed_min_one_success' },
      ],
    });
    assert.deepEqual(succeed(run, 'choose', 'left'), ['start left#1']);
    assert.equal(stateOf(run, 'right'), 'skipped');
    assert.equal(stateOf(run, 'after_right'), 'skipped');
    assert.deepEqual(succeed(run, 'left'), ['start join#1']);
  });

  it('fails a branch that chose a task that is not downstream of it', () => {
    const { run } = start({
      id: 'bad_branch',
      tasks: [
        { id: 'choose', activity: 'x', branch: true },
        { id: 'left', activity: 'x', upstream: ['choose'] },
      ],
    });
    assert.deepEqual(succeed(run, 'choose', ['left', 'nowhere']), ['finish failed']);
    assert.equal(run.status.tasks[0]!.error?.type, 'InvalidBranch');
    assert.match(run.status.tasks[0]!.error?.message ?? '', /chose \["nowhere"\].*\(left\)/);
    assert.equal(stateOf(run, 'left'), 'upstream_failed');
    assert.match(finishRun(run, NOW).failureMessage!, /DAG 'bad_branch' run failed: task 'choose' failed: branch task/);
  });

  it('retries with backoff up to the task`s attempts, and stops at a non-retryable error', () => {
    const { run } = start({
      id: 'retry',
      tasks: [
        { id: 'flaky', activity: 'x', retries: 3, retryDelay: 100, retryBackoff: 3, maxRetryDelay: 500 },
        { id: 'fatal', activity: 'x', retries: 5 },
      ],
    });
    assert.deepEqual(fail(run, 'flaky'), ['retry flaky[0] 100']);
    assert.equal(stateOf(run, 'flaky'), 'up_for_retry');
    const again = () => commands(applyOutcome(run, { kind: 'retry_due', taskId: 'flaky', unit: 0 }, NOW));
    assert.deepEqual(again(), ['start flaky#2']);
    assert.deepEqual(fail(run, 'flaky'), ['retry flaky[0] 300']);
    assert.deepEqual(again(), ['start flaky#3']);
    assert.deepEqual(fail(run, 'flaky'), ['retry flaky[0] 500']); // capped by maxRetryDelay
    assert.deepEqual(again(), ['start flaky#4']);
    assert.deepEqual(fail(run, 'flaky'), []);
    assert.equal(stateOf(run, 'flaky'), 'failed');
    assert.equal(run.status.tasks[0]!.attempts, 4);
    assert.deepEqual(fail(run, 'fatal', 0, true), ['finish failed']);
    assert.equal(run.status.tasks[1]!.attempts, 1);
  });

  it('keeps a DAG`s maxActiveTasks across tasks and a map`s maxActive across its instances', () => {
    const { run, decisions } = start({
      id: 'caps',
      maxActiveTasks: 3,
      tasks: [
        { id: 'list', activity: 'x' },
        { id: 'm', activity: 'x', map: { over: 'list', maxActive: 2 } },
        { id: 'solo', activity: 'x', upstream: ['list'] },
        { id: 'solo2', activity: 'x', upstream: ['list'] },
      ],
    });
    assert.deepEqual(commands(decisions), ['start list#1']);
    // Two map lanes and one task fill the three slots; solo2 waits for a slot.
    assert.deepEqual(succeed(run, 'list', [10, 11, 12, 13]), ['start m[0]#1', 'start m[1]#1', 'start solo#1']);
    assert.equal(run.status.tasks[1]!.mapped?.total, 4);
    assert.equal(stateOf(run, 'solo2'), 'scheduled');
    // A freed map slot goes to the one that waited longest: solo2, then the lane's next instance.
    assert.deepEqual(succeed(run, 'm', 20, 0), ['start solo2#1']);
    assert.deepEqual(succeed(run, 'solo'), ['start m[2]#1']);
    assert.deepEqual(fail(run, 'm', 1), ['start m[3]#1']); // a failed instance does not stop the others
    assert.deepEqual(succeed(run, 'm', 23, 3), []); // m[2] and solo2 still run: m's second lane has nothing left
    assert.deepEqual(succeed(run, 'm', 22, 2), []);
    const m = run.status.tasks[1]!;
    assert.equal(m.state, 'failed');
    assert.equal(m.error?.message, '1 of 4 instances failed; first: [1] boom 1');
    assert.deepEqual(m.mapped, {
      total: 4,
      states: { success: 3, failed: 1 },
      errors: [{ mapIndex: 1, error: { message: 'boom 1' } }],
    });
    assert.deepEqual(succeed(run, 'solo2'), ['finish failed']);
  });

  it('maps over a list: instances get their item and index, the task outputs their outputs in order', () => {
    const { run } = start({
      id: 'map',
      tasks: [
        { id: 'list', activity: 'x' },
        { id: 'm', activity: 'x', map: { over: 'list', field: 'files' } },
        { id: 'total', activity: 'x', upstream: ['m'] },
      ],
    });
    applyOutcome(run, { kind: 'attempt_succeeded', taskId: 'list', unit: 0, output: { files: ['a', 'b'] } }, NOW);
    const started = nextDecisions(run, NOW).filter((d) => d.kind === 'start_attempt');
    assert.deepEqual(
      started.map((d) => d.kind === 'start_attempt' && [d.ctx.mapIndex, d.ctx.item, d.ctx.upstream]),
      [
        [0, 'a', {}],
        [1, 'b', {}],
      ],
    );
    assert.deepEqual(succeed(run, 'm', 'B', 1), []);
    assert.deepEqual(succeed(run, 'm', 'A', 0), ['start total#1']);
    assert.deepEqual(run.status.outputs.m, ['A', 'B']);
  });

  it('skips a map over an empty list and fails one over something that is not a list', () => {
    const { run } = start({
      id: 'map_edge',
      tasks: [
        { id: 'empty', activity: 'x' },
        { id: 'scalar', activity: 'x' },
        { id: 'over_empty', activity: 'x', map: { over: 'empty' } },
        { id: 'over_scalar', activity: 'x', map: { over: 'scalar', field: 'items' } },
      ],
    });
    succeed(run, 'empty', []);
    assert.deepEqual(succeed(run, 'scalar', { items: 3 }), ['finish failed']);
    assert.equal(stateOf(run, 'over_empty'), 'skipped');
    assert.deepEqual(run.status.tasks[3]!.error, {
      message: "task 'over_scalar' maps over 'items' of the output of 'scalar', which is not a list (got number)",
      type: 'InvalidMapInput',
    });
  });

  it('runs a large map in batches, each holding as many slots as it runs instances', () => {
    const { run } = start({
      id: 'batches',
      maxActiveTasks: 10,
      tasks: [
        { id: 'list', activity: 'x' },
        { id: 'm', activity: 'x', map: { over: 'list', maxActive: 5 } },
      ],
    });
    const items = Array.from({ length: 1200 }, (_, i) => i);
    // maxActive 5 of 10 slots: 1 batch of 5 at a time (floor(5 / 5)), three batches of up to 500.
    assert.deepEqual(succeed(run, 'list', items), ['batch m-0 0+500/5']);
    const batch = (unit: number, n: number, errors: { mapIndex: number; error: { message: string } }[] = []) =>
      commands([
        ...applyOutcome(
          run,
          {
            kind: 'batch_finished',
            taskId: 'm',
            unit,
            result: {
              outputs: new Array<Json>(n).fill(unit),
              states: errors.length ? { success: n - errors.length, failed: errors.length } : { success: n },
              errors,
              maxAttempts: 2,
            },
          },
          NOW,
        ),
        ...nextDecisions(run, NOW),
      ]);
    assert.deepEqual(batch(0, 500), ['batch m-1 500+500/5']);
    assert.deepEqual(run.status.tasks[1]!.mapped?.states, { waiting: 700, success: 500 });
    assert.deepEqual(batch(1, 500), ['batch m-2 1000+200/5']);
    assert.deepEqual(batch(2, 200, [{ mapIndex: 1100, error: { message: 'bad item' } }]), ['finish failed']);
    const m = run.status.tasks[1]!;
    assert.equal(m.error?.message, '1 of 1200 instances failed; first: [1100] bad item');
    assert.deepEqual(m.mapped?.states, { success: 1199, failed: 1 });
    assert.equal(m.attempts, 2);
  });

  it('takes an exclusiveBy task`s lock before it starts and releases it when it ends', () => {
    const { run, decisions } = start({
      id: 'locked',
      params: { output: { type: 'string', default: 's3://b/lake' } },
      tasks: [
        { id: 'publish', activity: 'x', exclusiveBy: 'output', retries: 1 },
        { id: 'after', activity: 'x', upstream: ['publish'] },
      ],
    });
    assert.deepEqual(commands(decisions), ['lock publish']);
    assert.equal(stateOf(run, 'publish'), 'scheduled');
    assert.deepEqual(
      commands([...applyOutcome(run, { kind: 'lock_granted', taskId: 'publish' }, NOW), ...nextDecisions(run, NOW)]),
      ['start publish#1'],
    );
    assert.deepEqual(fail(run, 'publish'), ['retry publish[0] 1000']); // the lock is kept across retries
    applyOutcome(run, { kind: 'retry_due', taskId: 'publish', unit: 0 }, NOW);
    // The release comes first; the downstream task starts with the output already recorded.
    assert.deepEqual(succeed(run, 'publish', 'done'), ['release publish', 'start after#1']);
  });

  it('fails a task whose lock could not be requested, without releasing a lock it never held', () => {
    const { run } = start({
      id: 'lock_fails',
      params: { output: { type: 'string', default: 'x' } },
      tasks: [{ id: 'publish', activity: 'x', exclusiveBy: 'output' }],
    });
    const follow = applyOutcome(
      run,
      { kind: 'unit_crashed', taskId: 'publish', unit: 0, error: { message: 'no lock' } },
      NOW,
    );
    assert.deepEqual(commands([...follow, ...nextDecisions(run, NOW)]), ['finish failed']);
    assert.equal(run.slotsUsed, 0);
  });

  it('fails a task whose output is over the limit in UTF-8 bytes, not characters', () => {
    const { run } = start({ id: 'big', tasks: [{ id: 'big', activity: 'x' }] });
    const chars = Math.floor(MAX_OUTPUT_BYTES / 2); // 2 bytes each: 128 Ki characters, 256 KiB plus quotes
    assert.deepEqual(succeed(run, 'big', 'é'.repeat(chars)), ['finish failed']);
    assert.equal(run.status.tasks[0]!.error?.type, 'TaskOutputTooLarge');
    assert.match(run.status.tasks[0]!.error?.message ?? '', /returned 256 KiB of output, over the 256 KiB limit/);
  });

  it('counts UTF-8 bytes as Node does', () => {
    for (const text of ['', 'plain', 'é', '€', '😀', 'a😀é€\u{10FFFF}', '\ud800 lone surrogate']) {
      assert.equal(utf8ByteLength(text), Buffer.byteLength(text), JSON.stringify(text));
    }
    assert.equal(checkOutputSize('t', 'x'.repeat(MAX_OUTPUT_BYTES - 2)), undefined);
    assert.equal(checkOutputSize('t', 'x'.repeat(MAX_OUTPUT_BYTES - 1))?.type, 'TaskOutputTooLarge');
  });

  it('reuses outputs of tasks that succeeded before, and runs only the rest', () => {
    const { decisions } = start(
      {
        id: 'reuse',
        tasks: [
          { id: 'a', activity: 'x' },
          { id: 'b', activity: 'x', upstream: ['a'] },
        ],
      },
      { a: 'kept' },
    );
    assert.deepEqual(commands(decisions), ['start b#1']);
    const b = decisions.find((d) => d.kind === 'start_attempt');
    assert.deepEqual(b?.kind === 'start_attempt' && b.ctx.upstream, { a: 'kept' });
  });

  it('marks a cancelled run: waiting tasks skipped, started ones failed', () => {
    const { run } = start({
      id: 'cancel',
      tasks: [
        { id: 'a', activity: 'x' },
        { id: 'b', activity: 'x', upstream: ['a'] },
      ],
    });
    assert.deepEqual(readyTasks(run), []);
    cancelRun(run, NOW);
    assert.deepEqual(states(run), { a: 'failed', b: 'skipped' });
    assert.equal(run.status.state, 'cancelled');
    assert.equal(run.status.tasks[0]!.error?.type, 'Cancelled');
  });
});
