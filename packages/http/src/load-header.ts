/**
 * The response header through which a server (usually its `@shoal/agent`) tells clients how loaded it is:
 *
 *     x-shoal-load: 0.42
 *     x-shoal-load: utilization=0.42, cpu=0.35, rps=120, eps=0.5
 *
 * A bare number is the utilization (0..1, may exceed 1 when over capacity). Unknown keys and malformed parts are
 * ignored, so the format can grow. The balancer uses it in `weighted_least_load`.
 */
export const LOAD_HEADER = 'x-shoal-load';

export interface HeaderLoad {
  utilization?: number;
  cpu?: number;
  rps?: number;
  eps?: number;
}

const KEYS = new Set(['utilization', 'cpu', 'rps', 'eps']);

function num(text: string): number | undefined {
  const v = Number(text.trim());
  return text.trim() !== '' && Number.isFinite(v) && v >= 0 ? v : undefined;
}

/** Parses a load header value; returns undefined when it holds nothing usable. */
export function parseLoadHeader(value: string | undefined): HeaderLoad | undefined {
  if (value === undefined || value.length > 512) return undefined;
  const bare = num(value);
  if (bare !== undefined) return { utilization: bare };
  let out: HeaderLoad | undefined;
  for (const part of value.split(/[,;]/)) {
    const eq = part.indexOf('=');
    if (eq === -1) continue;
    const key = part.slice(0, eq).trim().toLowerCase();
    const v = num(part.slice(eq + 1));
    if (!KEYS.has(key) || v === undefined) continue;
    (out ??= {})[key as keyof HeaderLoad] = v;
  }
  return out;
}

/** Formats a load header value (for servers and tests). */
export function formatLoadHeader(load: HeaderLoad): string {
  return Object.entries(load)
    .filter(([k, v]) => KEYS.has(k) && typeof v === 'number' && Number.isFinite(v))
    .map(([k, v]) => `${k}=${v}`)
    .join(', ');
}

/** Finds `name` (lower case) in undici's raw header array `[name, value, name, value, ...]`. */
export function findRawHeader(
  raw: ReadonlyArray<Buffer | string> | null | undefined,
  name: string,
): string | undefined {
  if (!raw) return undefined;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const k = raw[i]!;
    if (k.length === name.length && k.toString().toLowerCase() === name) return raw[i + 1]!.toString();
  }
  return undefined;
}
