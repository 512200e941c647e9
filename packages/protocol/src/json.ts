import type { Directive, ReportRequest, ReportResponse } from './messages.js';
import { ProtocolValidationError } from './validation-error.js';
import { validateDirective, validateReportRequest } from './validate.js';

// The JSON mapping for the coordinator's `POST /v1/report` (and for debugging with curl). It is the proto3 JSON
// mapping of ReportRequest / ReportResponse: lowerCamelCase field names (the proto's snake_case names are accepted
// too), 64-bit integers as JSON numbers on output and as numbers or decimal strings on input, absent optional
// fields omitted. Unknown fields are ignored on input.

type Obj = Record<string, unknown>;

function isObject(value: unknown): value is Obj {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Shallow copy with snake_case keys turned into lowerCamelCase (map values such as `custom` are left alone). */
function camelKeys(value: unknown): unknown {
  if (!isObject(value)) return value;
  const out: Obj = {};
  for (const [key, v] of Object.entries(value)) {
    out[key.includes('_') ? key.replace(/_([a-z0-9])/g, (_m, c: string) => c.toUpperCase()) : key] = v;
  }
  return out;
}

function normalizeRequest(body: unknown): unknown {
  const request = camelKeys(body);
  if (!isObject(request)) return request;
  const hello = camelKeys(request.hello);
  if (isObject(hello)) hello.capacity = camelKeys(hello.capacity);
  return { hello, report: camelKeys(request.report) };
}

/** Plain JSON-safe object for a ReportRequest (the body of `POST /v1/report`). */
export function reportToJson(request: ReportRequest): Obj {
  return JSON.parse(JSON.stringify(request)) as Obj;
}

/**
 * Parses and validates the body of `POST /v1/report` (already `JSON.parse`d, or a string / Buffer holding JSON).
 * Throws ProtocolValidationError naming the field and the value.
 */
export function reportFromJson(body: unknown): ReportRequest {
  let value = body;
  if (typeof body === 'string' || Buffer.isBuffer(body)) {
    try {
      value = JSON.parse(body.toString());
    } catch {
      throw new ProtocolValidationError('request', 'a JSON object', typeof body === 'string' ? body : '(bytes)');
    }
  }
  return validateReportRequest(normalizeRequest(value));
}

/** JSON for a ReportResponse (the answer of `POST /v1/report`). */
export function responseToJson(response: ReportResponse): Obj {
  return JSON.parse(JSON.stringify(response)) as Obj;
}

/** Parses and validates a ReportResponse received as JSON; `directive` is absent when the coordinator had none. */
export function responseFromJson(body: unknown): ReportResponse {
  let value = body;
  if (typeof body === 'string' || Buffer.isBuffer(body)) {
    try {
      value = JSON.parse(body.toString());
    } catch {
      throw new ProtocolValidationError('response', 'a JSON object', typeof body === 'string' ? body : '(bytes)');
    }
  }
  const response = camelKeys(value);
  if (!isObject(response)) throw new ProtocolValidationError('response', 'an object', value);
  if (response.directive === undefined || response.directive === null) return {};
  const directive = camelKeys(response.directive);
  if (isObject(directive)) directive.drain = camelKeys(directive.drain);
  const validated: Directive = validateDirective(directive, 'response.directive');
  return { directive: validated };
}
