import { isIP } from 'node:net';
import type { CheckDefinition, CheckKind, ServiceDefinition } from './catalog.js';
import type { CheckStatus } from './check-runner.js';
import { Fields } from './body.js';
import { readDurationField } from './duration.js';
import { badRequest } from './http-error.js';
import type { HttpError } from './http-error.js';

/** Consul's default OutputMaxSize (`checks.DefaultBufSize`). */
export const DEFAULT_OUTPUT_MAX_SIZE = 4096;

export const CHECK_STATUSES: readonly CheckStatus[] = ['passing', 'warning', 'critical'];

function duration(f: Fields, name: string): number | undefined {
  try {
    return readDurationField(f.get(name));
  } catch (err) {
    throw badRequest(`Request decode failed: ${(err as Error).message}`);
  }
}

/** Decodes one check object of a registration; `undefined` for an empty `{}` (Consul ignores those). */
export function decodeCheck(f: Fields): CheckDefinition | undefined {
  const args = f.has('ScriptArgs') ? f.strings('ScriptArgs') : f.strings('Args');
  const http = f.string('HTTP');
  const tcp = f.string('TCP');
  const grpc = f.string('GRPC');
  const udp = f.string('UDP');
  const h2ping = f.string('H2PING');
  const aliasService = f.string('AliasService');
  const aliasNode = f.string('AliasNode');
  const intervalMs = duration(f, 'Interval');
  const timeoutMs = duration(f, 'Timeout');
  const ttlMs = duration(f, 'TTL');
  const dcsa = duration(f, 'DeregisterCriticalServiceAfter');
  const header = f.get('Header');
  if (header !== undefined && header !== null) {
    const ok =
      typeof header === 'object' &&
      !Array.isArray(header) &&
      Object.values(header).every((v) => Array.isArray(v) && v.every((x) => typeof x === 'string'));
    if (!ok)
      throw badRequest(
        'Request decode failed: json: cannot unmarshal value into Go struct field .Header of type map[string][]string',
      );
  }
  const outputMaxSize = f.int('OutputMaxSize');
  const fbw = f.int('FailuresBeforeWarning');
  const fbc = f.int('FailuresBeforeCritical');
  const status = f.string('Status');
  const name = f.string('Name');
  const notes = f.string('Notes');
  const checkId = f.string('CheckID') || f.string('ID');
  const method = f.string('Method');
  const body = f.string('Body');
  const tlsServerName = f.string('TLSServerName');
  const tlsSkipVerify = f.bool('TLSSkipVerify');
  const grpcUseTls = f.bool('GRPCUseTLS');
  const empty =
    args.length === 0 &&
    !http &&
    !tcp &&
    !grpc &&
    !udp &&
    !h2ping &&
    !aliasService &&
    !aliasNode &&
    intervalMs === undefined &&
    timeoutMs === undefined &&
    ttlMs === undefined &&
    dcsa === undefined &&
    !status &&
    !name &&
    !notes &&
    !checkId &&
    !method &&
    !body &&
    outputMaxSize === 0;
  if (empty) return undefined;

  let kind: CheckKind = 'ttl';
  if (args.length > 0) kind = 'script';
  else if (http) kind = 'http';
  else if (tcp) kind = 'tcp';
  else if (udp) kind = 'udp';
  else if (grpc) kind = 'grpc';
  else if (h2ping) kind = 'h2ping';
  else if (aliasService || aliasNode) kind = 'alias';

  const def: CheckDefinition = {
    ...(checkId ? { checkId } : {}),
    ...(name ? { name } : {}),
    notes,
    ...(status ? { status: status as CheckStatus } : {}),
    kind,
    ...(ttlMs !== undefined && ttlMs > 0 ? { ttlMs } : {}),
    ...(intervalMs !== undefined && intervalMs > 0 ? { intervalMs } : {}),
    ...(timeoutMs !== undefined && timeoutMs > 0 ? { timeoutMs } : {}),
    ...(dcsa !== undefined && dcsa > 0 ? { deregisterCriticalServiceAfterMs: dcsa } : {}),
    outputMaxSize: outputMaxSize === 0 ? DEFAULT_OUTPUT_MAX_SIZE : outputMaxSize,
    ...(http ? { http } : {}),
    ...(method ? { method } : {}),
    ...(header ? { header: header as Record<string, string[]> } : {}),
    ...(body ? { body } : {}),
    ...(tlsSkipVerify ? { tlsSkipVerify } : {}),
    ...(tlsServerName ? { tlsServerName } : {}),
    ...(f.bool('DisableRedirects') ? { disableRedirects: true } : {}),
    ...(tcp ? { tcp } : {}),
    ...(grpc ? { grpc } : {}),
    ...(grpcUseTls ? { grpcUseTls } : {}),
    ...(aliasService ? { aliasService } : {}),
    ...(aliasNode ? { aliasNode } : {}),
  };
  if (fbw > 0) def.failuresBeforeWarning = fbw;
  if (fbc > 0) def.failuresBeforeCritical = fbc;
  const sbp = f.int('SuccessBeforePassing');
  if (sbp > 0) def.successBeforePassing = sbp;
  return def;
}

/** `structs.CheckType.Validate`, with Consul's messages; returns the message or undefined. */
export function validateCheck(def: CheckDefinition): string | undefined {
  const intervalType = ['script', 'http', 'tcp', 'udp', 'grpc', 'h2ping'].includes(def.kind);
  const interval = def.intervalMs ?? 0;
  const ttl = def.ttlMs ?? 0;
  if (interval > 0 && ttl > 0) return 'Interval and TTL cannot both be specified';
  if (intervalType && interval <= 0)
    return 'Interval must be > 0 for Script, HTTP, H2PING, TCP, UDP or OSService checks';
  if (def.kind === 'alias') {
    if (ttl > 0) return 'TTL must be not be set for Alias checks';
    if (interval > 0) return 'Interval cannot be set for Alias checks';
  }
  if (!intervalType && def.kind !== 'alias' && ttl <= 0) return 'TTL must be > 0 for TTL checks';
  if (def.outputMaxSize < 0) return 'MaxOutputMaxSize must be positive';
  if ((def.failuresBeforeWarning ?? 0) > (def.failuresBeforeCritical ?? 0))
    return "FailuresBeforeWarning can't be higher than FailuresBeforeCritical";
  return undefined;
}

/** `structs.ValidateServiceMetadata` (limits unverified against Consul; see the README). */
export function validateMeta(meta: Record<string, string>): string | undefined {
  const keys = Object.keys(meta);
  if (keys.length > 64) return 'Node metadata cannot contain more than 64 key/value pairs';
  for (const k of keys) {
    if (k === '') return 'Key cannot be blank';
    if (k.length > 128) return `Key is too long (limit: 128 characters)`;
    if (!/^[a-zA-Z0-9_-]+$/.test(k)) return `Key contains invalid characters`;
    if (k.startsWith('consul-')) return `Key prefix 'consul-' is reserved for internal use`;
    if (meta[k]!.length > 512) return `Value is too long (limit: 512 characters)`;
  }
  return undefined;
}

export interface DecodedService {
  def: ServiceDefinition;
  /** Errors found after ACL resolution in Consul's order; the caller checks ACLs first, then throws this. */
  lateError?: HttpError;
}

/** Decodes and validates a PUT /v1/agent/service/register body in Consul's order (see reference 2.1). */
export function decodeService(f: Fields): DecodedService {
  const name = f.string('Name');
  const id = f.string('ID') || name;
  const tags = f.strings('Tags');
  const address = f.string('Address');
  const port = f.int('Port');
  const meta = f.stringMap('Meta');
  const weightsF = f.object('Weights');
  const tagged: Record<string, { Address: string; Port: number }> = {};
  const taggedF = f.get('TaggedAddresses');
  if (taggedF !== undefined && taggedF !== null) {
    if (typeof taggedF !== 'object' || Array.isArray(taggedF))
      throw badRequest('Request decode failed: json: cannot unmarshal into Go struct field .TaggedAddresses');
    for (const [k, v] of Object.entries(taggedF)) {
      if (typeof v !== 'object' || v === null) continue;
      const tf = new Fields(v as Record<string, unknown>);
      tagged[k] = { Address: tf.string('Address'), Port: tf.int('Port') };
    }
  }
  const connect = f.object('Connect');
  const checkObjs: Fields[] = [];
  const single = f.object('Check');
  if (single) checkObjs.push(single);
  checkObjs.push(...f.objects('Checks'));
  const checks: CheckDefinition[] = [];
  for (const c of checkObjs) {
    const def = decodeCheck(c);
    if (def) checks.push(def);
  }

  if (!name) throw badRequest('Missing service name');
  if (address === '0.0.0.0' || address === '::' || address === '[::]') throw badRequest('Invalid service address');

  const family = isIP(address);
  if (family === 4) {
    tagged.lan_ipv4 ??= { Address: address, Port: port };
    tagged.wan_ipv4 ??= { Address: address, Port: port };
  } else if (family === 6) {
    tagged.lan_ipv6 ??= { Address: address, Port: port };
    tagged.wan_ipv6 ??= { Address: address, Port: port };
  }

  const weights = { Passing: 1, Warning: 1 };
  let lateError: HttpError | undefined;
  if (weightsF) {
    weights.Passing = weightsF.int('Passing');
    weights.Warning = weightsF.int('Warning');
    if (weights.Passing < 1) lateError = badRequest('Invalid Weights: Passing must be greater than 0');
    else if (weights.Warning < 0) lateError = badRequest('Invalid Weights: Warning must be greater or equal than 0');
  }
  if (!lateError) {
    const metaError = validateMeta(meta);
    if (metaError) lateError = badRequest(`Invalid Service Meta: ${metaError}`);
  }
  if (!lateError) {
    for (const c of checks) {
      const msg = validateCheck(c);
      if (msg) {
        lateError = badRequest(`Invalid check: ${msg}`);
        break;
      }
    }
  }
  if (!lateError) {
    for (const c of checks) {
      if (c.status !== undefined && !CHECK_STATUSES.includes(c.status)) {
        lateError = badRequest("Status for checks must 'passing', 'warning', 'critical'");
        break;
      }
    }
  }
  return {
    def: {
      id,
      name,
      tags,
      address,
      port,
      meta,
      taggedAddresses: tagged,
      weights,
      enableTagOverride: f.bool('EnableTagOverride'),
      kind: f.string('Kind'),
      connectNative: connect ? connect.bool('Native') : false,
      checks,
    },
    ...(lateError ? { lateError } : {}),
  };
}
