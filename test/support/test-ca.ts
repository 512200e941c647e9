/**
 * A throwaway certificate authority for TLS tests: a CA and one server certificate it signed (for `127.0.0.1`,
 * `localhost` and any extra DNS names), made with the system's `openssl` in a fresh temporary directory. Node's
 * crypto can make keys but not sign certificates; `opensslAvailable` says whether the tests can run here.
 */
import { execFileSync } from 'node:child_process';
import type { IncomingHttpHeaders } from 'node:http';
import { request } from 'node:https';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface TestCa {
  dir: string;
  caFile: string;
  certFile: string;
  keyFile: string;
  ca: Buffer;
  cert: Buffer;
  key: Buffer;
  /** Removes the directory. */
  remove(): void;
}

export const opensslAvailable = (() => {
  try {
    execFileSync('openssl', ['version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

/**
 * A CA and a server certificate for `dnsNames` and `ips` (default `localhost` and `127.0.0.1`), valid for a day.
 */
export function createTestCa(dnsNames: string[] = ['localhost'], ips: string[] = ['127.0.0.1']): TestCa {
  const dir = mkdtempSync(join(tmpdir(), 'shoal-test-ca-'));
  const file = (name: string) => join(dir, name);
  const run = (args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  run(
    ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'].concat([
      '-keyout',
      'ca.key',
      '-out',
      'ca.pem',
      '-days',
      '1',
      '-subj',
      '/CN=shoal-test-ca',
    ]),
  );
  run(
    ['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'].concat([
      '-keyout',
      'server.key',
      '-out',
      'server.csr',
      '-subj',
      '/CN=localhost',
    ]),
  );
  const san = [...ips.map((ip) => `IP:${ip}`), ...dnsNames.map((n) => `DNS:${n}`)].join(',');
  writeFileSync(file('ext.cnf'), `subjectAltName=${san}\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\n`);
  run(
    ['x509', '-req', '-in', 'server.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-days', '1'].concat([
      '-out',
      'server.pem',
      '-extfile',
      'ext.cnf',
    ]),
  );
  return {
    dir,
    caFile: file('ca.pem'),
    certFile: file('server.pem'),
    keyFile: file('server.key'),
    ca: readFileSync(file('ca.pem')),
    cert: readFileSync(file('server.pem')),
    key: readFileSync(file('server.key')),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/**
 * A certificate `ca` signs for a client (mutual TLS): subject CN `name`, DNS SANs `dnsNames` (default `[name]`),
 * extended key usage clientAuth. Written beside the CA; removed with it.
 */
export function issueClientCertificate(
  ca: TestCa,
  name: string,
  dnsNames: string[] = [name],
): { certFile: string; keyFile: string; cert: Buffer; key: Buffer } {
  const base = `client-${name.replace(/[^A-Za-z0-9.-]/g, '_')}`;
  const file = (suffix: string) => join(ca.dir, `${base}.${suffix}`);
  const run = (args: string[]) => execFileSync('openssl', args, { cwd: ca.dir, stdio: ['ignore', 'ignore', 'pipe'] });
  run(
    ['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-subj', `/CN=${name}`].concat([
      '-keyout',
      file('key'),
      '-out',
      file('csr'),
    ]),
  );
  const san = dnsNames.map((n) => `DNS:${n}`).join(',');
  writeFileSync(
    file('ext'),
    `${san ? `subjectAltName=${san}\n` : ''}basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=clientAuth\n`,
  );
  run(
    ['x509', '-req', '-in', file('csr'), '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-days', '1'].concat([
      '-out',
      file('pem'),
      '-extfile',
      file('ext'),
    ]),
  );
  return {
    certFile: file('pem'),
    keyFile: file('key'),
    cert: readFileSync(file('pem')),
    key: readFileSync(file('key')),
  };
}

type Json = any; // eslint-disable-line @typescript-eslint/no-explicit-any -- free-form JSON answers

/**
 * `GET` over TLS as an operator's client would: trusting `ca` and checking `servername`, with a client certificate
 * when `cert` and `key` are given; the body parsed when it is JSON (else the text). Fails after `timeoutMs`.
 */
export function tlsGet(
  url: URL,
  options: {
    ca: Buffer;
    servername: string;
    headers?: Record<string, string>;
    cert?: Buffer;
    key?: Buffer;
    timeoutMs: number;
  },
): Promise<{ status: number; headers: IncomingHttpHeaders; body: Json }> {
  const { timeoutMs, ...tls } = options;
  return new Promise((resolve, reject) => {
    const req = request(url, tls, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (d: Buffer) => chunks.push(d));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let body: unknown = text;
        try {
          body = JSON.parse(text);
        } catch {
          // not JSON
        }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body });
      });
    });
    req.setTimeout(timeoutMs, () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}
