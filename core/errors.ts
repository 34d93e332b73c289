/** Errors a user can cause. The CLI prints their message (no stack) and exits 2 (usage) or 1 (run failed). */

export class TempoflowError extends Error {
  override name = 'TempoflowError';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** A DAG declaration is invalid (cycle, unknown upstream, duplicate id, bad option). Thrown by `defineDag`. */
export class DagDefinitionError extends TempoflowError {
  override name = 'DagDefinitionError';
}

/** A run's params do not match the DAG's param specs. Thrown before any run starts. */
export class ParamValidationError extends TempoflowError {
  override name = 'ParamValidationError';
}

/** A DAG id that no registry knows. */
export class UnknownDagError extends TempoflowError {
  override name = 'UnknownDagError';
}

/**
 * Thrown by task code for a failure that retrying cannot fix (bad input, a failed quality check): the task
 * fails at once instead of using its retries.
 */
export class NonRetryableTaskError extends TempoflowError {
  override name = 'NonRetryableTaskError';
  constructor(
    message: string,
    /** Shown as the error's type in run status (e.g. `'QualityCheckFailed'`). */
    readonly type = 'NonRetryableTaskError',
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** Names a field in a message: the library passes field names through, the CLI maps them to its flags. */
export type FieldNamer = (field: string) => string;

/**
 * A value given for a named field is invalid (an option of a client call such as `from` or `maxActive`). The
 * message names the field; `describe` names it, and any other field it mentions, as the caller calls them (the
 * CLI: `--from`, `--max-active`).
 */
export class InvalidFieldError extends TempoflowError {
  override name = 'InvalidFieldError';
  constructor(
    readonly field: string,
    /** The problem, as a sentence after the field's name, or a whole message that names fields through `name`. */
    private readonly problem: string | ((name: FieldNamer) => string),
    options?: { cause?: unknown },
  ) {
    super(
      InvalidFieldError.render(field, problem, (f) => f),
      options,
    );
  }

  describe(name: FieldNamer): string {
    return InvalidFieldError.render(this.field, this.problem, name);
  }

  private static render(field: string, problem: string | ((name: FieldNamer) => string), name: FieldNamer): string {
    return typeof problem === 'string' ? `${name(field)}: ${problem}` : problem(name);
  }
}
