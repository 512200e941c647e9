import net from 'node:net';
import tls from 'node:tls';
import { ProtocolError, TimeoutError, type Clock, type TimerHandle } from '@shoal/core';

/**
 * One HTTP/1.1 `POST`, written directly on a socket: over a fresh TCP (or TLS) connection with `Connection: close`,
 * or, given a `KeepAliveConnection`, over the connection the previous request left open (a report a second then
 * costs no TCP or TLS handshake).
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
  /** Reuse (and leave open) a connection to the same origin; one request at a time. */
  connection?: KeepAliveConnection;
}

export interface PostResponse {
  status: number;
  /** Lower-cased header names; a repeated header keeps its last value. */
  headers: Record<string, string>;
  body: Buffer;
}

/** What `parseResponse` knows beyond the answer: whether the connection may carry another request. */
export interface ParsedResponse extends PostResponse {
  /** HTTP/1.1 without `Connection: close` (or 1.0 with keep-alive), a delimited body, and no byte after it. */
  reusable: boolean;
}

/** Headers may not exceed this many bytes (as Node's server default). */
const MAX_HEADER_BYTES = 16 * 1024;
const HEADER_END = Buffer.from('\r\n\r\n');

export interface PendingPost {
  readonly response: Promise<PostResponse>;
  /** Ends the attempt now (the promise rejects with `reason`). */
  abort(reason: Error): void;
}

/**
 * The one idle connection a reporter keeps to its coordinator between requests. It is closed after `idleMs`
 * without a request (below Node's default server keep-alive timeout of 5 s, so the server rarely closes it
 * first), when the server closes it, and by `close()`. An idle connection does not keep the process alive.
 */
export class KeepAliveConnection {
  private socket: net.Socket | undefined;
  private timer: TimerHandle | undefined;
  private readonly drop = (): void => this.close();

  constructor(
    private readonly clock: Clock,
    readonly idleMs = 4_000,
  ) {}

  /** The idle connection, taken out of the slot, or undefined. */
  take(): net.Socket | undefined {
    const socket = this.socket;
    this.detach();
    if (socket === undefined || socket.destroyed || !socket.writable) {
      socket?.destroy();
      return undefined;
    }
    socket.ref();
    return socket;
  }

  /** Parks a connection whose last answer left it reusable. */
  park(socket: net.Socket): void {
    this.close();
    this.socket = socket;
    socket.on('error', this.drop);
    socket.on('close', this.drop);
    socket.on('end', this.drop);
    // Bytes while idle are not an answer to anything: the connection is no longer in a known state.
    socket.on('data', this.drop);
    socket.unref();
    this.timer = this.clock.setTimeout(this.drop, this.idleMs);
    this.timer.unref();
  }

  /** Closes the idle connection, if any. */
  close(): void {
    const socket = this.socket;
    this.detach();
    socket?.destroy();
  }

  private detach(): void {
    this.clock.clearTimeout(this.timer);
    this.timer = undefined;
    const socket = this.socket;
    this.socket = undefined;
    if (socket === undefined) return;
    socket.off('error', this.drop);
    socket.off('close', this.drop);
    socket.off('end', this.drop);
    socket.off('data', this.drop);
  }
}

function connect(request: PostRequest, host: string, port: number): net.Socket {
  if (request.url.protocol !== 'https:') return net.connect({ host, port });
  const t = request.tls ?? {};
  return tls.connect({
    host,
    port,
    ...(t.ca !== undefined ? { ca: t.ca } : {}),
    ...(t.cert !== undefined ? { cert: t.cert } : {}),
    ...(t.key !== undefined ? { key: t.key } : {}),
    servername: t.servername ?? (net.isIP(host) === 0 ? host : ''),
    ALPNProtocols: ['http/1.1'],
  });
}

/**
 * Sends `request`; the promise settles with the answer or an error, never later than `timeoutMs`. On a reused
 * connection that the server closed before answering a byte (its keep-alive timeout raced our request), the
 * request is sent once more on a new connection: a report the coordinator may have seen twice is harmless.
 */
export function post(request: PostRequest): PendingPost {
  const { url, clock, connection } = request;
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  const port = Number(url.port) || (url.protocol === 'https:' ? 443 : 80);
  let head = `POST ${url.pathname}${url.search} HTTP/1.1\r\nhost: ${url.host}\r\n`;
  for (const [name, value] of Object.entries(request.headers)) head += `${name}: ${value}\r\n`;
  head += `content-length: ${Buffer.byteLength(request.body)}\r\nconnection: ${connection ? 'keep-alive' : 'close'}\r\n\r\n`;
  const wire = head + request.body;
  let finish: (error: Error | undefined, response?: ParsedResponse) => void = () => undefined;
  const response = new Promise<PostResponse>((resolve, reject) => {
    let settled = false;
    let socket: net.Socket;
    let detach: () => void = () => undefined;
    const timer = clock.setTimeout(
      () => finish(new TimeoutError(`POST ${url.href} got no complete answer within ${request.timeoutMs} ms`)),
      request.timeoutMs,
    );
    timer.unref();
    finish = (error, value) => {
      if (settled) return;
      settled = true;
      clock.clearTimeout(timer);
      detach();
      if (error === undefined && value !== undefined && value.reusable && connection !== undefined) {
        connection.park(socket);
      } else {
        socket.destroy();
      }
      if (error !== undefined || value === undefined) reject(error);
      else resolve({ status: value.status, headers: value.headers, body: value.body });
    };
    const attempt = (reused: boolean, s: net.Socket): void => {
      socket = s;
      const chunks: Buffer[] = [];
      let size = 0;
      const limit = MAX_HEADER_BYTES + request.maxBodyBytes + 64;
      /** A reused connection that failed before any byte of an answer: try once more on a new one. */
      const retry = (): boolean => {
        if (!reused || size > 0 || settled) return false;
        detach();
        s.destroy();
        attempt(false, connect(request, host, port));
        return true;
      };
      const tryParse = (ended: boolean): void => {
        try {
          const parsed = parseResponse(Buffer.concat(chunks, size), ended, request.maxBodyBytes);
          if (parsed !== undefined) finish(undefined, parsed);
          else if (ended && !retry()) {
            finish(new ProtocolError(`POST ${url.href}: the connection closed before a complete answer`));
          }
        } catch (error) {
          finish(error as Error);
        }
      };
      const onData = (chunk: Buffer): void => {
        size += chunk.length;
        if (size > limit) {
          finish(new ProtocolError(`POST ${url.href}: answer larger than ${request.maxBodyBytes} bytes`));
          return;
        }
        chunks.push(chunk);
        tryParse(false);
      };
      const onEnd = (): void => tryParse(true);
      const onError = (error: Error): void => {
        if (!retry()) finish(error);
      };
      s.on('data', onData);
      s.on('end', onEnd);
      s.on('close', onEnd);
      s.on('error', onError);
      detach = () => {
        s.off('data', onData);
        s.off('end', onEnd);
        s.off('close', onEnd);
        s.off('error', onError);
      };
      // Written at once (the socket buffers it until connected), without half-closing: node:http servers abort a
      // request whose connection half-closes before they answered.
      s.write(wire);
    };
    const idle = connection?.take();
    attempt(idle !== undefined, idle ?? connect(request, host, port));
  });
  return { response, abort: (reason) => finish(reason) };
}

/**
 * Parses an HTTP/1.x answer from the bytes received so far; `undefined` while incomplete. Throws ProtocolError on
 * bytes that are not an HTTP answer.
 */
export function parseResponse(bytes: Buffer, ended: boolean, maxBodyBytes: number): ParsedResponse | undefined {
  const end = bytes.indexOf(HEADER_END);
  if (end < 0) {
    if (bytes.length > MAX_HEADER_BYTES || (bytes.length >= 5 && !bytes.subarray(0, 5).equals(Buffer.from('HTTP/')))) {
      throw new ProtocolError('the answer is not HTTP/1.x');
    }
    return undefined;
  }
  const lines = bytes.subarray(0, end).toString('latin1').split('\r\n');
  const statusLine = /^HTTP\/1\.([01]) (\d{3})(?: .*)?$/.exec(lines[0] ?? '');
  if (!statusLine) throw new ProtocolError('the answer is not HTTP/1.x');
  const status = Number(statusLine[2]);
  const headers: Record<string, string> = {};
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(':');
    if (colon <= 0) throw new ProtocolError('malformed header line in the answer');
    headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  const rest = bytes.subarray(end + HEADER_END.length);
  const connectionHeader = (headers.connection ?? '').toLowerCase();
  const persistent =
    statusLine[1] === '1' ? !/\bclose\b/.test(connectionHeader) : /\bkeep-alive\b/.test(connectionHeader);
  if (/\bchunked\b/i.test(headers['transfer-encoding'] ?? '')) {
    const decoded = decodeChunked(rest, maxBodyBytes);
    if (decoded === undefined) return undefined;
    return { status, headers, body: decoded.body, reusable: persistent && !ended && decoded.used === rest.length };
  }
  const declared = headers['content-length'];
  if (declared !== undefined) {
    if (!/^\d+$/.test(declared)) throw new ProtocolError('malformed Content-Length in the answer');
    const length = Number(declared);
    if (length > maxBodyBytes) throw new ProtocolError(`answer larger than ${maxBodyBytes} bytes`);
    if (rest.length < length) return undefined;
    return {
      status,
      headers,
      body: rest.subarray(0, length),
      reusable: persistent && !ended && rest.length === length,
    };
  }
  // No length: the body runs to the end of the connection, which cannot carry another request.
  return ended ? { status, headers, body: rest, reusable: false } : undefined;
}

/**
 * Decodes a complete chunked body (and the bytes it used, trailers included), or returns undefined while the last
 * chunk has not arrived.
 */
function decodeChunked(bytes: Buffer, maxBodyBytes: number): { body: Buffer; used: number } | undefined {
  const parts: Buffer[] = [];
  let total = 0;
  let at = 0;
  for (;;) {
    const lineEnd = bytes.indexOf('\r\n', at);
    if (lineEnd < 0) return undefined;
    const sizeText = bytes.subarray(at, lineEnd).toString('latin1').split(';')[0]!.trim();
    if (!/^[0-9a-fA-F]{1,8}$/.test(sizeText)) throw new ProtocolError('malformed chunk in the answer');
    const chunkSize = parseInt(sizeText, 16);
    if (chunkSize === 0) {
      // Trailers (not needed) end with an empty line; until it arrives the connection is not at a message boundary.
      const trailerEnd = bytes.indexOf('\r\n\r\n', lineEnd);
      const used = trailerEnd < 0 ? -1 : trailerEnd + 4;
      return { body: Buffer.concat(parts, total), used };
    }
    total += chunkSize;
    if (total > maxBodyBytes) throw new ProtocolError(`answer larger than ${maxBodyBytes} bytes`);
    const start = lineEnd + 2;
    if (bytes.length < start + chunkSize + 2) return undefined;
    parts.push(bytes.subarray(start, start + chunkSize));
    at = start + chunkSize + 2;
  }
}
