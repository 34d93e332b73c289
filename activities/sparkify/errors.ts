import { TempoflowError } from '../../core/errors';

/**
 * A problem with the input data or the run's configuration that retrying cannot fix. Its message names what to
 * look at (file, line, counts); callers show the message, not a stack trace.
 */
export class InputDataError extends TempoflowError {
  override name = 'InputDataError';
}

/** Staging rejected more records than the run allows (`maxRejectRate`). */
export class RejectRateError extends InputDataError {
  override name = 'RejectRateError';
}

/** The built tables failed a data quality check; the lake is left as it was. */
export class QualityCheckError extends InputDataError {
  override name = 'QualityCheckError';
}
