/**
 * The one default identity of an instance (used by `@shoal/consul`'s ServiceRegistration and `@shoal/agent`):
 * the address clients use and the instance id, when the application gives none.
 */
import { hostname, networkInterfaces } from 'node:os';
import { randomBytes } from 'node:crypto';

type Interfaces = ReturnType<typeof networkInterfaces>;

/**
 * The first non-internal IPv4 address of this host, in the order the OS lists interfaces; undefined when there
 * is none. `interfaces` is injectable for tests.
 */
export function firstNonInternalIPv4(interfaces: Interfaces = networkInterfaces()): string | undefined {
  for (const addresses of Object.values(interfaces)) {
    for (const a of addresses ?? []) {
      // Node 18.0-18.3 reported family as a number; accept both.
      const family = a.family as string | number;
      if ((family === 'IPv4' || family === 4) && !a.internal) return a.address;
    }
  }
  return undefined;
}

/** Random per process, so ids stay stable within a process and differ between processes on one host. */
const PROCESS_TOKEN = randomBytes(4).toString('hex');

/**
 * The default instance id: `<service>-<host>-<port>-<8 hex per process>`, stable for the life of the process and
 * distinct between two processes on one host and port (one replaced by the next).
 */
export function defaultInstanceId(service: string, port: number, host: string = hostname()): string {
  const safeHost = host.replace(/[^A-Za-z0-9.-]/g, '-').slice(0, 63) || 'host';
  return `${service}-${safeHost}-${port}-${PROCESS_TOKEN}`;
}

/** The default address clients use: the first non-internal IPv4 address, else `127.0.0.1`. */
export function defaultInstanceAddress(interfaces?: Interfaces): string {
  return firstNonInternalIPv4(interfaces) ?? '127.0.0.1';
}
