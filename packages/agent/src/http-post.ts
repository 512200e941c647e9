import net from 'node:net';
import tls from 'node:tls';
import { ProtocolError, TimeoutError, type Clock } from '@shoal/core';

/**
 * One HTTP/1.1 `POST` over a fresh TCP (or TLS) connection with `Connection: close`, written directly on a socket.
 *
 * Why not `node:http`: a `ClientRequest` in the process, even one per second, makes the application's own
 * `node:http` server measurably slower on every request (the client and the server share `OutgoingMessage`, the
 * HTTP parser glue and `IncomingMessage`, whose optimized code turns polymorphic once both kinds of objects go
 * through it). On a hello-world server that cost 4–10 µs per request, 20–30 % of its CPU (docs/benchmarks/agent.md).
 * A report is one small request a second, so this client needs only what that takes: a status line, headers, a
 * body delimited by Content-Length, chunked encoding or the end of the connection.
 */
export interface PostRequest {
  url: URL;
  headers: Readonly<Record<string, string | number>>;
  body: string;
  /** TLS options (https): PEM contents and the name to verify. */
  tls?: { ca?: string | Buffer; cert?: string | Buffer; key?: string | Buffer; servername?: string };
  timeoutMs: number;
  /** Largest body accepted; a bigger answer fails the request. */
  maxBodyBytes: number;
  clock: Clock;
}

export interface PostResponse {
  status: number;
  /** Lower-cased header names; a repeated header keeps its last value. */
  headers: Record<string, string>;
  body: Buffer;
}

/** Headers may not exceed this many bytes (as Node's server default). */
const MAX_HEADER_BYTES = 16 * 1024;
const HEADER_END = Buffer.from('\r\n\r\n');

export interface PendingPost {
  readonly response: Promise<PostResponse>;
  /** Ends the attempt now (the promise rejects with `reason`). */
  abort(reason: Error): void;
}

/** Sends `request`; the promise settles with the answer or an error, never later than `timeoutMs`. */
export function post(request: PostRequest): PendingPost {
  const { url, clock } = request;
  const secure = url.protocol === 'https:';
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  const port = Number(url.port) || (secure ? 443 : 80);
  let socket: net.Socket;
  let finish: (error: Error | undefined, response?: PostResponse) => void = () => undefined;
  const response = new Promise<PostResponse>((resolve, reject) => {
    let settled = false;
    finish = (error, value) => {
      if (settled) return;
      settled = true;
      clock.clearTimeout(timer);
      socket.destroy();
      if (error !== undefined) reject(error);
      else resolve(value as PostResponse);
    };
    const timer = clock.setTimeout(
      () => finish(new TimeoutError(`POST ${url.href} got no complete answer within ${request.timeoutMs} ms`)),
      request.timeoutMs,
    );
    timer.unref();
    if (secure) {
      const t = request.tls ?? {};
      socket = tls.connect({
        host,
        port,
        ...(t.ca !== undefined ? { ca: t.ca } : {}),
        ...(t.cert !== undefined ? { cert: t.cert } : {}),
        ...(t.key !== undefined ? { key: t.key } : {}),
        servername: t.servername ?? (net.isIP(host) === 0 ? host : ''),
        ALPNProtocols: ['http/1.1'],
      });
    } else {
      socket = net.connect({ host, port });
    }
    const chunks: Buffer[] = [];
    let size = 0;
    const limit = MAX_HEADER_BYTES + request.maxBodyBytes + 64;
    const tryParse = (ended: boolean) => {
      try {
        const parsed = parseResponse(Buffer.concat(chunks, size), ended, request.maxBodyBytes);
        if (parsed !== undefined) finish(undefined, parsed);
        else if (ended) finish(new ProtocolError(`POST ${url.href}: the connection closed before a complete answer`));
      } catch (error) {
        finish(error as Error);
      }
    };
    socket.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        finish(new ProtocolError(`POST ${url.href}: answer larger than ${request.maxBodyBytes} bytes`));
        return;
      }
      chunks.push(chunk);
      tryParse(false);
    });
    socket.on('end', () => tryParse(true));
    socket.on('close', () => tryParse(true));
    socket.on('error', (error) => finish(error));
    let head = `POST ${url.pathname}${url.search} HTTP/1.1\r\nhost: ${url.host}\r\n`;
    for (const [name, value] of Object.entries(request.headers)) head += `${name}: ${value}\r\n`;
    head += `content-length: ${Buffer.byteLength(request.body)}\r\nconnection: close\r\n\r\n`;
    // Written at once (the socket buffers it until connected), without half-closing: node:http servers abort a
    // request whose connection half-closes before they answered. The server closes after its answer.
    socket.write(head + request.body);
  });
  return { response, abort: (reason) => finish(reason) };
}

/**
 * Parses an HTTP/1.x answer from the bytes received so far; `undefined` while incomplete. Throws ProtocolError on
 * bytes that are not an HTTP answer.
 */
export function parseResponse(bytes: Buffer, ended: boolean, maxBodyBytes: number): PostResponse | undefined {
  const end = bytes.indexOf(HEADER_END);
  if (end < 0) {
    if (bytes.length > MAX_HEADER_BYTES || (bytes.length >= 5 && !bytes.subarray(0, 5).equals(Buffer.from('HTTP/')))) {
      throw new ProtocolError('the answer is not HTTP/1.x');
    }
    return undefined;
  }
  const lines = bytes.subarray(0, end).toString('latin1').split('\r\n');
  const statusLine = /^HTTP\/1\.[01] (\d{3})(?: .*)?$/.exec(lines[0] ?? '');
  if (!statusLine) throw new ProtocolError('the answer is not HTTP/1.x');
  const status = Number(statusLine[1]);
  const headers: Record<string, string> = {};
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(':');
    if (colon <= 0) throw new ProtocolError('malformed header line in the answer');
    headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  const rest = bytes.subarray(end + HEADER_END.length);
  if (/\bchunked\b/i.test(headers['transfer-encoding'] ?? '')) {
    const body = decodeChunked(rest, maxBodyBytes);
    return body === undefined ? undefined : { status, headers, body };
  }
  const declared = headers['content-length'];
  if (declared !== undefined) {
    if (!/^\d+$/.test(declared)) throw new ProtocolError('malformed Content-Length in the answer');
    const length = Number(declared);
    if (length > maxBodyBytes) throw new ProtocolError(`answer larger than ${maxBodyBytes} bytes`);
    return rest.length >= length ? { status, headers, body: rest.subarray(0, length) } : undefined;
  }
  // No length: the body runs to the end of the connection (we asked for Connection: close).
  return ended ? { status, headers, body: rest } : undefined;
}

/** Decodes a complete chunked body, or returns undefined while the last chunk has not arrived. */
function decodeChunked(bytes: Buffer, maxBodyBytes: number): Buffer | undefined {
  const parts: Buffer[] = [];
  let total = 0;
  let at = 0;
  for (;;) {
    const lineEnd = bytes.indexOf('\r\n', at);
    if (lineEnd < 0) return undefined;
    const sizeText = bytes.subarray(at, lineEnd).toString('latin1').split(';')[0]!.trim();
    if (!/^[0-9a-fA-F]{1,8}$/.test(sizeText)) throw new ProtocolError('malformed chunk in the answer');
    const chunkSize = parseInt(sizeText, 16);
    if (chunkSize === 0) return Buffer.concat(parts, total); // trailers, if any, are not needed
    total += chunkSize;
    if (total > maxBodyBytes) throw new ProtocolError(`answer larger than ${maxBodyBytes} bytes`);
    const start = lineEnd + 2;
    if (bytes.length < start + chunkSize + 2) return undefined;
    parts.push(bytes.subarray(start, start + chunkSize));
    at = start + chunkSize + 2;
  }
}
