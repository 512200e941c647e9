import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { CheckDefinition } from '../catalog.js';
import type { Probe, ProbeResult } from '../check-runner.js';

/** Consul reads at most this much of an HTTP check's response body into the output. */
const MAX_BODY = 4096;

/**
 * Consul's `CheckHTTP`: 2xx is passing, 429 is warning, anything else critical; the output is
 * `HTTP GET <url>: 200 OK Output: <body>`. Redirects are not followed (Consul follows them; see the README).
 */
export function httpProbe(def: CheckDefinition): Probe {
  const url = def.http!;
  const method = def.method || 'GET';
  return (signal) =>
    new Promise<ProbeResult>((resolve) => {
      let parsed: URL;
      try {
        parsed = new URL(url);
      } catch {
        resolve({ status: 'critical', output: `parse ${JSON.stringify(url)}: invalid URL` });
        return;
      }
      const headers: Record<string, string | string[]> = {
        'User-Agent': 'Consul Health Check',
        Accept: 'text/plain, text/*, */*',
      };
      for (const [k, v] of Object.entries(def.header ?? {})) headers[k] = v;
      const send = parsed.protocol === 'https:' ? httpsRequest : httpRequest;
      const req = send(
        parsed,
        {
          method,
          headers,
          signal,
          ...(parsed.protocol === 'https:'
            ? {
                rejectUnauthorized: !def.tlsSkipVerify,
                ...(def.tlsServerName ? { servername: def.tlsServerName } : {}),
              }
            : {}),
        },
        (res) => {
          const chunks: Buffer[] = [];
          let size = 0;
          res.on('data', (c: Buffer) => {
            if (size < MAX_BODY) chunks.push(c);
            size += c.length;
          });
          res.on('error', () => {});
          res.on('end', () => {
            const code = res.statusCode ?? 0;
            const body = Buffer.concat(chunks).subarray(0, MAX_BODY).toString('utf8');
            const output = `HTTP ${method} ${url}: ${code} ${res.statusMessage ?? ''} Output: ${body}`;
            const status = code >= 200 && code <= 299 ? 'passing' : code === 429 ? 'warning' : 'critical';
            resolve({ status, output });
          });
        },
      );
      req.on('error', (err: NodeJS.ErrnoException) => {
        const why = signal.aborted
          ? 'context deadline exceeded (Client.Timeout exceeded while awaiting headers)'
          : describeDialError(err, `${parsed.hostname}:${parsed.port || (parsed.protocol === 'https:' ? 443 : 80)}`);
        resolve({
          status: 'critical',
          output: `${method[0]}${method.slice(1).toLowerCase()} ${JSON.stringify(url)}: ${why}`,
        });
      });
      if (def.body) req.write(def.body);
      req.end();
    });
}

/** Renders a socket error the way Go's net package words it. */
export function describeDialError(err: NodeJS.ErrnoException, address: string): string {
  switch (err.code) {
    case 'ECONNREFUSED':
      return `dial tcp ${address}: connect: connection refused`;
    case 'ECONNRESET':
      return `read tcp ${address}: read: connection reset by peer`;
    case 'ENOTFOUND':
      return `dial tcp: lookup ${address.split(':')[0]}: no such host`;
    case 'ETIMEDOUT':
      return `dial tcp ${address}: i/o timeout`;
    default:
      return err.message;
  }
}
