/**
 * undici has two handler styles: the original callbacks (`onConnect`, `onHeaders`, `onData`, `onComplete`,
 * `onError`), which `fetch` and `undici.request` use, and the controller style of undici 7 (`onRequestStart`,
 * `onResponseStart`, ...), which interceptors may use. The Shoal dispatcher speaks the original style internally;
 * this adapter presents a controller-style handler through it.
 */
import type { Duplex } from 'node:stream';
import type { Dispatcher } from 'undici';
import { InvalidArgumentError } from '@shoal/core';

export type LegacyHandler = Required<Pick<Dispatcher.DispatchHandler, 'onError'>> &
  Omit<Dispatcher.DispatchHandler, 'onError'>;

function headersObject(raw: ReadonlyArray<Buffer | string> | null | undefined): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  if (!raw) return out;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const key = raw[i]!.toString().toLowerCase();
    const value = raw[i + 1]!.toString();
    const prev = out[key];
    if (prev === undefined) out[key] = value;
    else if (Array.isArray(prev)) prev.push(value);
    else out[key] = [prev, value];
  }
  return out;
}

class Controller {
  paused = false;
  aborted = false;
  reason: Error | null = null;
  resumeFn: (() => void) | null = null;
  rawHeaders: Buffer[] | null = null;
  rawTrailers: string[] | null = null;
  constructor(private readonly abortFn: (err?: Error) => void) {}
  pause(): void {
    this.paused = true;
  }
  resume(): void {
    if (!this.paused) return;
    this.paused = false;
    this.resumeFn?.();
  }
  abort(reason?: Error): void {
    if (this.aborted) return;
    this.aborted = true;
    this.reason = reason ?? null;
    this.abortFn(reason);
  }
}

/** Returns a handler in the original style for either style of input. */
export function toLegacyHandler(handler: Dispatcher.DispatchHandler): LegacyHandler {
  const controllerStyle =
    typeof handler.onRequestStart === 'function' ||
    typeof handler.onResponseStart === 'function' ||
    typeof handler.onResponseEnd === 'function' ||
    typeof handler.onResponseError === 'function';
  if (!controllerStyle) {
    if (typeof handler.onError !== 'function') {
      throw new InvalidArgumentError('handler must have an onError method (or use the onRequestStart style)');
    }
    return handler as LegacyHandler;
  }
  let controller = new Controller(() => {});
  return {
    onConnect(abort: (err?: Error) => void, context?: unknown) {
      controller = new Controller(abort);
      handler.onRequestStart?.(controller as never, context);
    },
    onUpgrade(statusCode: number, rawHeaders: Buffer[] | string[] | null, socket: Duplex) {
      handler.onRequestUpgrade?.(controller as never, statusCode, headersObject(rawHeaders), socket);
    },
    onHeaders(statusCode: number, rawHeaders: Buffer[], resume: () => void, statusText: string) {
      controller.resumeFn = resume;
      controller.rawHeaders = rawHeaders;
      handler.onResponseStart?.(controller as never, statusCode, headersObject(rawHeaders), statusText);
      return !controller.paused;
    },
    onData(chunk: Buffer) {
      handler.onResponseData?.(controller as never, chunk);
      return !controller.paused;
    },
    onComplete(trailers: string[] | null) {
      controller.rawTrailers = trailers;
      handler.onResponseEnd?.(controller as never, headersObject(trailers));
    },
    onError(err: Error) {
      handler.onResponseError?.(controller as never, err);
    },
  };
}
