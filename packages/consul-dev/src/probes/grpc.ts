import type { CheckDefinition } from '../catalog.js';
import type { Probe, ProbeResult } from '../check-runner.js';

/** The slice of @grpc/grpc-js the probe uses (grpc-js is an optional peer dependency). */
interface GrpcModule {
  Client: new (
    target: string,
    credentials: unknown,
    options?: Record<string, unknown>,
  ) => {
    makeUnaryRequest(
      method: string,
      serialize: (value: string) => Buffer,
      deserialize: (bytes: Buffer) => number,
      argument: string,
      metadata: unknown,
      options: { deadline?: number },
      callback: (err: (Error & { code?: number; details?: string }) | null, value?: number) => void,
    ): { cancel(): void };
    close(): void;
  };
  Metadata: new () => unknown;
  credentials: { createInsecure(): unknown; createSsl(): unknown };
}

let grpcModule: Promise<GrpcModule | undefined> | undefined;

function loadGrpc(): Promise<GrpcModule | undefined> {
  grpcModule ??= import('@grpc/grpc-js').then(
    (m) => ((m as unknown as { default?: GrpcModule }).default ?? m) as unknown as GrpcModule,
    () => undefined,
  );
  return grpcModule;
}

/** grpc.health.v1.HealthCheckRequest { string service = 1; } */
function encodeRequest(service: string): Buffer {
  if (!service) return Buffer.alloc(0);
  const bytes = Buffer.from(service, 'utf8');
  const len: number[] = [];
  let n = bytes.length;
  while (n > 0x7f) {
    len.push((n & 0x7f) | 0x80);
    n >>>= 7;
  }
  len.push(n);
  return Buffer.concat([Buffer.from([0x0a, ...len]), bytes]);
}

/** grpc.health.v1.HealthCheckResponse { ServingStatus status = 1; } → the enum number (0 when absent). */
function decodeStatus(buf: Buffer): number {
  let i = 0;
  while (i < buf.length) {
    const tag = buf[i++]!;
    if (tag === 0x08) {
      let value = 0;
      let shift = 0;
      for (;;) {
        const b = buf[i++] ?? 0;
        value |= (b & 0x7f) << shift;
        if ((b & 0x80) === 0) break;
        shift += 7;
      }
      return value;
    }
    return 0;
  }
  return 0;
}

const SERVING_STATUS = ['UNKNOWN', 'SERVING', 'NOT_SERVING', 'SERVICE_UNKNOWN'];

/**
 * Consul's `CheckGRPC`: calls grpc.health.v1.Health/Check on `host:port[/service]`; SERVING is passing, anything
 * else critical. Needs @grpc/grpc-js; without it the check stays critical and says so.
 */
export function grpcProbe(def: CheckDefinition): Probe {
  const target = def.grpc!;
  const slash = target.indexOf('/');
  const address = slash >= 0 ? target.slice(0, slash) : target;
  const service = slash >= 0 ? target.slice(slash + 1) : '';
  return async (signal) => {
    const grpc = await loadGrpc();
    if (!grpc)
      return { status: 'critical', output: 'gRPC checks need the @grpc/grpc-js package, which is not installed' };
    const creds = def.grpcUseTls ? grpc.credentials.createSsl() : grpc.credentials.createInsecure();
    const client = new grpc.Client(address, creds, { 'grpc.max_reconnect_backoff_ms': 1000 });
    try {
      return await new Promise<ProbeResult>((resolve) => {
        const call = client.makeUnaryRequest(
          '/grpc.health.v1.Health/Check',
          encodeRequest,
          decodeStatus,
          service,
          new grpc.Metadata(),
          {},
          (err, status) => {
            signal.removeEventListener('abort', onAbort);
            if (err) {
              resolve({ status: 'critical', output: `gRPC check ${target}: failed: ${err.details ?? err.message}` });
            } else if (status === 1) {
              resolve({ status: 'passing', output: `gRPC check ${target}: success` });
            } else {
              const name = SERVING_STATUS[status ?? 0] ?? String(status);
              resolve({ status: 'critical', output: `gRPC check ${target}: failed: serving status ${name}` });
            }
          },
        );
        const onAbort = () => call.cancel();
        signal.addEventListener('abort', onAbort, { once: true });
      });
    } finally {
      client.close();
    }
  };
}
