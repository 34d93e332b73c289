import assert from 'node:assert/strict';
import path from 'node:path';
import { describe, it } from 'node:test';
import { defineDag } from '../core/dag';
import { DagDefinitionError, ParamValidationError } from '../core/errors';
import { resolveParams } from '../core/params';
import { decideTrigger } from '../core/trigger-rules';
import { checkActivitiesCover } from '../worker/task-activities';
import { resolveRunParams } from '../client/run-params';
import type { DagDefinition, TaskState } from '../core/types';

const ok: DagDefinition = {
  id: 'ok',
  tasks: [
    { id: 'a', activity: 'x' },
    { id: 'b', activity: 'x', upstream: ['a'] },
  ],
};

function definitionError(def: unknown): string {
  try {
    defineDag(def as DagDefinition);
  } catch (err) {
    assert.ok(err instanceof DagDefinitionError, `expected DagDefinitionError, got ${String(err)}`);
    return err.message;
  }
  assert.fail('defineDag accepted an invalid DAG');
}

describe('defineDag', () => {
  it('returns frozen plain data in topological order with defaults applied', () => {
    const dag = defineDag({
      id: 'order',
      defaults: { retries: 2, retryDelay: '2s', executionTimeout: '5m' },
      tasks: [
        { id: 'c', activity: 'x', upstream: ['b'] },
        { id: 'b', activity: 'x', upstream: ['a'], retries: 0 },
        { id: 'a', activity: 'x' },
      ],
    });
    assert.deepEqual(
      dag.tasks.map((t) => t.id),
      ['a', 'b', 'c'],
    );
    assert.equal(dag.tasks[0]!.retry.maxAttempts, 3);
    assert.equal(dag.tasks[0]!.retry.initialDelayMs, 2000);
    assert.equal(dag.tasks[1]!.retry.maxAttempts, 1);
    assert.equal(dag.tasks[2]!.executionTimeoutMs, 300_000);
    assert.ok(Object.isFrozen(dag) && Object.isFrozen(dag.tasks[0]));
    assert.deepEqual(JSON.parse(JSON.stringify(dag)), dag);
  });

  it('adds the mapped-over task to upstream', () => {
    const dag = defineDag({
      id: 'm',
      tasks: [
        { id: 'list', activity: 'x' },
        { id: 'each', activity: 'x', map: { over: 'list', field: 'items', maxActive: 4 } },
      ],
    });
    assert.deepEqual(dag.tasks[1]!.upstream, ['list']);
    assert.deepEqual(dag.tasks[1]!.map, { over: 'list', field: 'items', maxActive: 4 });
  });

  it('names the DAG and the tasks of a cycle', () => {
    const message = definitionError({
      id: 'cyclic',
      tasks: [
        { id: 'a', activity: 'x', upstream: ['c'] },
        { id: 'b', activity: 'x', upstream: ['a'] },
        { id: 'c', activity: 'x', upstream: ['b'] },
      ],
    });
    assert.match(message, /DAG 'cyclic'/);
    assert.match(message, /cycle/);
    for (const id of ['a', 'b', 'c']) assert.match(message, new RegExp(`\\b${id}\\b`));
  });

  it('refuses unknown upstream tasks, duplicate ids and invalid options, naming DAG and task', () => {
    assert.match(
      definitionError({ id: 'd', tasks: [{ id: 'a', activity: 'x', upstream: ['nope'] }] }),
      /DAG 'd', task 'a': unknown upstream task 'nope'/,
    );
    assert.match(
      definitionError({
        id: 'd',
        tasks: [
          { id: 'a', activity: 'x' },
          { id: 'a', activity: 'y' },
        ],
      }),
      /DAG 'd': duplicate task id 'a'/,
    );
    assert.match(
      definitionError({ id: 'd', tasks: [{ id: 'a', activity: 'x', retries: -1 }] }),
      /DAG 'd', task 'a': retries/,
    );
    assert.match(
      definitionError({ id: 'd', tasks: [{ id: 'a', activity: 'x', triggerRule: 'sometimes' }] }),
      /DAG 'd', task 'a': triggerRule/,
    );
    assert.match(
      definitionError({ id: 'd', tasks: [{ id: 'a', activity: 'x', executionTimeout: 'soon' }] }),
      /DAG 'd', task 'a': executionTimeout: "soon" is not a duration/,
    );
    assert.match(definitionError({ id: 'd', tasks: [{ id: 'a', activity: 'x', retrys: 2 }] }), /task 'a':.*retrys/);
    assert.match(definitionError({ id: 'd', tasks: [] }), /DAG 'd': tasks: a DAG needs at least one task/);
    assert.match(definitionError({ id: '9bad', tasks: [{ id: 'a', activity: 'x' }] }), /id: must start with a letter/);
  });

  it('points at the likely name for a typo, and lists the names otherwise', () => {
    const tasks = (up: string) => [
      { id: 'extract', activity: 'x' },
      { id: 'load', activity: 'x', upstream: [up] },
    ];
    assert.match(
      definitionError({ id: 'd', tasks: tasks('extrakt') }),
      /DAG 'd', task 'load': unknown upstream task 'extrakt' \(did you mean 'extract'\?\)$/,
    );
    assert.match(
      definitionError({ id: 'd', tasks: tasks('transform') }),
      /unknown upstream task 'transform' \(known: extract, load\)$/,
    );
    const many = Array.from({ length: 15 }, (_, i) => ({ id: `t${i}`, activity: 'x', upstream: i ? [] : ['zzz'] }));
    assert.match(definitionError({ id: 'd', tasks: many }), /\(known: t0, t1, .*t11, … 3 more\)$/);
  });

  it("says a schedule is an object when given Airflow's string form", () => {
    assert.equal(
      definitionError({ ...ok, schedule: '@daily' }),
      "DAG 'ok': schedule is an object: { cron: \"@daily\" } for a cron expression or preset, or { every: '1d' } for a fixed interval",
    );
    assert.equal(defineDag({ ...ok, schedule: { cron: '@daily' } }).schedule?.cron, '@daily');
  });

  it('accepts a valid DAG', () => {
    assert.equal(defineDag(ok).id, 'ok');
  });
});

describe('params', () => {
  const dag = defineDag({
    id: 'p',
    params: {
      input: { type: 'string', required: true },
      mode: { type: 'string', enum: ['full', 'incremental'], default: 'full' },
      rate: { type: 'number', default: 0.01, min: 0, max: 1 },
      chunks: { type: 'integer', default: 4, min: 1 },
      dryRun: { type: 'boolean', default: false },
    },
    tasks: [{ id: 'a', activity: 'x' }],
  });

  it('fills defaults and coerces CLI strings', () => {
    assert.deepEqual(resolveParams(dag, { input: 's3://b/p', rate: '0.5', chunks: '8', dryRun: 'true' }), {
      input: 's3://b/p',
      mode: 'full',
      rate: 0.5,
      chunks: 8,
      dryRun: true,
    });
  });

  it('refuses bad values, naming the DAG and each param', () => {
    assert.throws(
      () => resolveParams(dag, { rate: '2', chunks: '1.5', mode: 'sometimes', dryRun: 'yes', colour: 'red' }),
      (err: unknown) => {
        assert.ok(err instanceof ParamValidationError);
        assert.match(err.message, /^DAG 'p':/);
        assert.match(err.message, /unknown param 'colour' \(known: input, mode, rate, chunks, dryRun\)/);
        assert.match(err.message, /param 'input' is required/);
        assert.match(err.message, /param 'rate' must be at most 1/);
        assert.match(err.message, /param 'chunks' must be an integer/);
        assert.match(err.message, /param 'mode' must be one of full, incremental/);
        assert.match(err.message, /param 'dryRun' must be true or false/);
        return true;
      },
    );
  });
});

describe('trigger rules', () => {
  const S: TaskState = 'success';
  const F: TaskState = 'failed';
  const K: TaskState = 'skipped';
  const R: TaskState = 'running';
  const U: TaskState = 'upstream_failed';
  const cases: [Parameters<typeof decideTrigger>[0], TaskState[], ReturnType<typeof decideTrigger>][] = [
    ['all_success', [S, S], 'run'],
    ['all_success', [S, R], 'wait'],
    ['all_success', [F, R], 'upstream_failed'],
    ['all_success', [U, S], 'upstream_failed'],
    ['all_success', [S, K], 'skip'],
    ['all_done', [S, R], 'wait'],
    ['all_done', [F, K], 'run'],
    ['all_failed', [F, U], 'run'],
    ['all_failed', [F, R], 'wait'],
    ['all_failed', [F, S], 'skip'],
    ['one_success', [R, S], 'run'],
    ['one_success', [R, F], 'wait'],
    ['one_success', [F, F], 'upstream_failed'],
    ['one_success', [K, K], 'skip'],
    ['one_failed', [R, F], 'run'],
    ['one_failed', [S, S], 'skip'],
    ['one_failed', [S, R], 'wait'],
    ['none_failed', [S, K], 'run'],
    ['none_failed', [S, F], 'upstream_failed'],
    ['none_failed', [S, R], 'wait'],
    ['none_failed_min_one_success', [K, S], 'run'],
    ['none_failed_min_one_success', [K, K], 'skip'],
    ['none_failed_min_one_success', [U, S], 'upstream_failed'],
    ['always', [R, R], 'run'],
    ['all_success', [], 'run'],
  ];
  for (const [rule, upstream, expected] of cases) {
    it(`${rule} with [${upstream.join(', ')}] -> ${expected}`, () => {
      assert.equal(decideTrigger(rule, upstream), expected);
    });
  }
});

describe('checkActivitiesCover', () => {
  it('names the DAG, the task and the likely activity when a task names none registered', () => {
    const dag = defineDag({ id: 'etl', tasks: [{ id: 'transform', activity: 'shoutt' }] });
    assert.throws(
      () => checkActivitiesCover([dag], { shout: async () => null, greet: async () => null }),
      /^TempoflowError: DAG 'etl', task 'transform': no activity named 'shoutt' is registered \(did you mean 'shout'\?\)$/,
    );
    assert.doesNotThrow(() => checkActivitiesCover([dag], { shoutt: async () => null }));
  });
});

describe('resolveRunParams', () => {
  it("makes a location param's relative local path absolute against the caller's folder, and nothing else", () => {
    const dag = defineDag({
      id: 'paths',
      params: {
        input: { type: 'string', location: true, default: 's3://bucket/in' },
        output: { type: 'string', location: true, required: true },
        label: { type: 'string', default: 'lake' },
      },
      validateParams: (p) => (p.input === p.output ? ['input and output are one place'] : []),
      tasks: [{ id: 'a', activity: 'x' }],
    });
    assert.deepEqual(resolveRunParams(dag, { output: './runs/../lake' }), {
      input: 's3://bucket/in',
      output: path.resolve('lake'),
      label: 'lake',
    });
    assert.equal(resolveRunParams(dag, { output: '/data/lake' }).output, '/data/lake');
    assert.equal(resolveRunParams(dag, { output: 's3://b/lake', input: 'in' }).input, path.resolve('in'));
    assert.equal(resolveRunParams(dag, { output: 'file:///data/lake' }).output, 'file:///data/lake');
    // The DAG's own checks see the places themselves, however each was spelt.
    assert.throws(
      () => resolveRunParams(dag, { input: path.resolve('lake'), output: 'lake' }),
      /input and output are one place/,
    );
  });
});
