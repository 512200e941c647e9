import type { IncomingMessage } from 'node:http';
import { HttpError, badRequest } from './http-error.js';

/** Consul's 413 text (agent/kvs_endpoint.go), used for every body over the limit. */
export function tooLarge(size: number, max: number): HttpError {
  return new HttpError(
    413,
    `Request body(${size} bytes) too large, max size: ${max} bytes. See ` +
      'https://developer.hashicorp.com/docs/agent/config/config-files#kv_max_value_size.',
  );
}

/** Past this much discarded body, the connection is cut instead of drained. */
const MAX_DRAIN_BYTES = 64 * 1024 * 1024;

/** Discards the rest of a refused body so the client can read the 413; cuts the connection if it goes on and on. */
function drain(req: IncomingMessage): void {
  let drained = 0;
  req.on('data', (chunk: Buffer) => {
    drained += chunk.length;
    if (drained > MAX_DRAIN_BYTES) req.socket.destroy();
  });
  req.resume();
}

/**
 * Reads a request body up to `maxBytes`. A declared or counted size over the limit rejects with 413; the rest of the
 * body is drained (not parsed) so the client still reads the answer instead of a reset connection.
 */
export function readBody(req: IncomingMessage, maxBytes: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length']);
    if (Number.isFinite(declared) && declared > maxBytes) {
      drain(req);
      reject(tooLarge(declared, maxBytes));
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let failed = false;
    req.on('data', (chunk: Buffer) => {
      if (failed) return;
      size += chunk.length;
      if (size > maxBytes) {
        failed = true;
        chunks.length = 0;
        drain(req);
        reject(tooLarge(size, maxBytes));
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => {
      if (!failed) resolve(Buffer.concat(chunks));
    });
    req.on('error', (err) => {
      if (!failed) {
        failed = true;
        reject(err);
      }
    });
  });
}

/**
 * Parses a JSON request body the way Go's `encoding/json` decodes into a struct: an empty body is allowed when
 * `optional`, anything else must be a JSON object. Failures answer 400 `Request decode failed: …`.
 */
export function parseJsonObject(body: Buffer, optional = false): Record<string, unknown> {
  const text = body.toString('utf8');
  if (text.trim() === '') {
    if (optional) return {};
    throw badRequest('Request decode failed: EOF');
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw badRequest(`Request decode failed: ${(err as Error).message}`);
  }
  if (value === null) return {};
  if (typeof value !== 'object' || Array.isArray(value)) {
    const kind = Array.isArray(value) ? 'array' : typeof value;
    throw badRequest(`Request decode failed: json: cannot unmarshal ${kind} into Go value of type struct`);
  }
  return value as Record<string, unknown>;
}

/** Normalises a key the way Go matches JSON fields (case-insensitive) plus Consul's snake_case aliases. */
function fold(key: string): string {
  return key.replace(/_/g, '').toLowerCase();
}

/**
 * Case-insensitive view of a decoded JSON object: `fields(obj).get('DeregisterCriticalServiceAfter')` also finds
 * `deregistercriticalserviceafter` and `deregister_critical_service_after`.
 */
export class Fields {
  private readonly map = new Map<string, unknown>();
  constructor(obj: Record<string, unknown>) {
    for (const [k, v] of Object.entries(obj)) {
      const f = fold(k);
      // An exact-case key wins over a folded duplicate, as in Go.
      if (!this.map.has(f) || k === f) this.map.set(f, v);
    }
  }
  get(name: string): unknown {
    return this.map.get(fold(name));
  }
  has(name: string): boolean {
    const v = this.map.get(fold(name));
    return v !== undefined && v !== null;
  }
  string(name: string): string {
    const v = this.get(name);
    if (v === undefined || v === null) return '';
    if (typeof v !== 'string') throw typeError(name, v, 'string');
    return v;
  }
  optionalString(name: string): string | undefined {
    const v = this.get(name);
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'string') throw typeError(name, v, 'string');
    return v;
  }
  int(name: string): number {
    const v = this.get(name);
    if (v === undefined || v === null) return 0;
    if (typeof v !== 'number' || !Number.isInteger(v)) throw typeError(name, v, 'int');
    return v;
  }
  bool(name: string): boolean {
    const v = this.get(name);
    if (v === undefined || v === null) return false;
    if (typeof v !== 'boolean') throw typeError(name, v, 'bool');
    return v;
  }
  strings(name: string): string[] {
    const v = this.get(name);
    if (v === undefined || v === null) return [];
    if (!Array.isArray(v) || v.some((x) => typeof x !== 'string')) throw typeError(name, v, '[]string');
    return v as string[];
  }
  stringMap(name: string): Record<string, string> {
    const v = this.get(name);
    if (v === undefined || v === null) return {};
    if (typeof v !== 'object' || Array.isArray(v) || Object.values(v).some((x) => typeof x !== 'string'))
      throw typeError(name, v, 'map[string]string');
    return { ...(v as Record<string, string>) };
  }
  object(name: string): Fields | undefined {
    const v = this.get(name);
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'object' || Array.isArray(v)) throw typeError(name, v, 'struct');
    return new Fields(v as Record<string, unknown>);
  }
  objects(name: string): Fields[] {
    const v = this.get(name);
    if (v === undefined || v === null) return [];
    if (!Array.isArray(v)) throw typeError(name, v, '[]struct');
    return v.map((x, i) => {
      if (typeof x !== 'object' || x === null || Array.isArray(x)) throw typeError(`${name}[${i}]`, x, 'struct');
      return new Fields(x as Record<string, unknown>);
    });
  }
}

function jsonKind(v: unknown): string {
  if (Array.isArray(v)) return 'array';
  if (v === null) return 'null';
  return typeof v;
}

function typeError(name: string, v: unknown, goType: string): HttpError {
  return badRequest(
    `Request decode failed: json: cannot unmarshal ${jsonKind(v)} into Go struct field .${name} of type ${goType}`,
  );
}
