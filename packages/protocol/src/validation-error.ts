import { ProtocolError, describeValue } from '@shoal/core';

/**
 * A message broke the shoal.v1 contract. `code` is `SHOAL_ERR_PROTOCOL` (it is a `ProtocolError`); `field` is the
 * path of the offending field (`report.custom.queue_depth`) and the message names it and the value received.
 */
export class ProtocolValidationError extends ProtocolError {
  readonly field: string;

  constructor(field: string, expectation: string, value: unknown) {
    super(`${field} must be ${expectation}, got ${describeValue(value)}`);
    this.name = 'ProtocolValidationError';
    this.field = field;
  }
}
