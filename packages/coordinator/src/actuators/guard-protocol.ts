/**
 * What a coordinator and a replica guard say over the guard's Unix socket: one JSON object per line.
 *
 * coordinator → guard: `{"t":"hello","nonce":N,"proof":P}` with P = HMAC-SHA256(token, "c:" + N); the guard drops a
 * connection whose proof is wrong. guard → coordinator: `{"t":"welcome","proof":HMAC(token, "g:" + N),...}`, then
 * `{"t":"log"}` lines of its replica's output, `{"t":"started"}` when it started the replica and `{"t":"exit"}`
 * with the replica's exit code just before the guard exits. Both sides know the token from the guard's record, so
 * each proves to the other that it is the process the record names.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Socket } from 'node:net';

export interface HelloMessage {
  t: 'hello';
  nonce: string;
  proof: string;
}

export interface WelcomeMessage {
  t: 'welcome';
  proof: string;
  id: string;
  guardPid: number;
  replicaPid?: number;
  replicaStartTime?: string;
}

export interface LogMessage {
  t: 'log';
  stream: 'stdout' | 'stderr';
  line: string;
}

export interface StartedMessage {
  t: 'started';
  replicaPid: number;
  replicaStartTime?: string;
}

export interface ExitMessage {
  t: 'exit';
  code: number | null;
  signal: NodeJS.Signals | null;
}

export type GuardMessage = WelcomeMessage | LogMessage | StartedMessage | ExitMessage;

/** Longest line either side accepts; a log line is cut to 8 KiB before it is sent. */
export const MAX_LINE_BYTES = 64 * 1024;
export const MAX_LOG_LINE_CHARS = 8192;

export function newNonce(): string {
  return randomBytes(16).toString('hex');
}

export function proof(token: string, side: 'c' | 'g', nonce: string): string {
  return createHmac('sha256', token).update(`${side}:${nonce}`).digest('hex');
}

export function checkProof(token: string, side: 'c' | 'g', nonce: string, given: unknown): boolean {
  if (typeof given !== 'string' || given.length !== 64) return false;
  return timingSafeEqual(Buffer.from(proof(token, side, nonce)), Buffer.from(given));
}

/** Calls `onMessage` with each JSON line `socket` receives; destroys the socket on an oversized or invalid line. */
export function readLines(socket: Socket, onMessage: (message: Record<string, unknown>) => void): void {
  let buffer = '';
  socket.setEncoding('utf8');
  socket.on('data', (chunk: string) => {
    buffer += chunk;
    for (;;) {
      const i = buffer.indexOf('\n');
      if (i < 0) break;
      const line = buffer.slice(0, i);
      buffer = buffer.slice(i + 1);
      let message: unknown;
      try {
        message = JSON.parse(line);
      } catch {
        socket.destroy();
        return;
      }
      if (message && typeof message === 'object' && !Array.isArray(message)) {
        onMessage(message as Record<string, unknown>);
      }
    }
    if (buffer.length > MAX_LINE_BYTES) socket.destroy();
  });
}

export function sendLine(socket: Socket | undefined, message: object, callback?: () => void): boolean {
  if (!socket || socket.destroyed || !socket.writable) return false;
  socket.write(`${JSON.stringify(message)}\n`, callback ? () => callback() : undefined);
  return true;
}
