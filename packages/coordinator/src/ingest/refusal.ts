import * as grpc from '@grpc/grpc-js';
import { isShoalError } from '@shoal/core';

export type Transport = 'stream' | 'unary' | 'http';

export type RefusalReason =
  'invalid' | 'unauthenticated' | 'permission_denied' | 'rate_limited' | 'capacity' | 'no_hello' | 'unavailable';

/** A refusal with the gRPC status and HTTP status that carry it. */
export class IngestRefusal extends Error {
  constructor(
    readonly grpcCode: grpc.status,
    readonly httpStatus: number,
    readonly reason: RefusalReason,
    message: string,
  ) {
    super(message);
    this.name = 'IngestRefusal';
  }
}

/** The refusals ingestion gives, one constructor each, so every path answers a case with the same statuses. */
export const refuse = {
  invalid: (message: string) => new IngestRefusal(grpc.status.INVALID_ARGUMENT, 400, 'invalid', message),
  noHello: (message: string) => new IngestRefusal(grpc.status.INVALID_ARGUMENT, 400, 'no_hello', message),
  unauthenticated: (message: string) => new IngestRefusal(grpc.status.UNAUTHENTICATED, 401, 'unauthenticated', message),
  permissionDenied: (message: string) =>
    new IngestRefusal(grpc.status.PERMISSION_DENIED, 403, 'permission_denied', message),
  rateLimited: (message: string) => new IngestRefusal(grpc.status.RESOURCE_EXHAUSTED, 429, 'rate_limited', message),
  capacity: (message: string) => new IngestRefusal(grpc.status.RESOURCE_EXHAUSTED, 503, 'capacity', message),
  unavailable: (message: string) => new IngestRefusal(grpc.status.UNAVAILABLE, 503, 'unavailable', message),
} as const;

/** Any error thrown while handling agent input, as a refusal: validation errors are 400, the rest 500. */
export function toRefusal(error: unknown): IngestRefusal {
  if (error instanceof IngestRefusal) return error;
  if (isShoalError(error)) return refuse.invalid(error.message);
  return new IngestRefusal(grpc.status.INTERNAL, 500, 'invalid', 'internal error');
}
