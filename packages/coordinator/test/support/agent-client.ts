import * as grpc from '@grpc/grpc-js';
import {
  emptyLoadReport,
  loadCoordinatorService,
  type AgentMessage,
  type Directive,
  type Hello,
  type LoadReport,
  type WireCoordinatorMessage,
} from '@shoal/protocol';
import {
  createCoordinator,
  type Actuator,
  type Coordinator,
  type ReplicaInfo,
  type ScaleOptions,
} from '@shoal/coordinator';

const { CoordinatorClient } = loadCoordinatorService(grpc);

export function hello(service: string, instanceId: string, extra: Partial<Hello> = {}): Hello {
  return {
    protocolVersion: 1,
    service,
    instanceId,
    address: '127.0.0.1',
    port: 4000,
    startedAtMs: Date.now() - 60_000,
    ...extra,
  };
}

export function report(extra: Partial<LoadReport> = {}): LoadReport {
  return {
    ...emptyLoadReport(),
    seq: 1,
    intervalMs: 1000,
    ready: true,
    requests: 100,
    eventLoopUtilization: 0.5,
    cpu: 0.3,
    rssBytes: 50e6,
    heapUsedBytes: 20e6,
    sentAtMs: Date.now(),
    ...extra,
  };
}

/** A raw agent stream, for driving the coordinator exactly as an agent (or an attacker) would. */
export class TestAgent {
  readonly client: InstanceType<typeof CoordinatorClient>;
  stream: grpc.ClientDuplexStream<AgentMessage, WireCoordinatorMessage> | undefined;
  readonly directives: Directive[] = [];
  status: grpc.StatusObject | undefined;
  error: grpc.ServiceError | undefined;
  private readonly ended: Promise<void>;
  private endResolve!: () => void;

  constructor(
    address: string,
    readonly token?: string,
  ) {
    this.client = new CoordinatorClient(address.replace(/^grpc:\/\//, ''), grpc.credentials.createInsecure());
    this.ended = new Promise((r) => (this.endResolve = r));
  }

  open(): this {
    const md = new grpc.Metadata();
    if (this.token) md.set('authorization', `Bearer ${this.token}`);
    const stream = this.client.connect(md);
    this.stream = stream;
    stream.on('data', (m: WireCoordinatorMessage) => this.directives.push(m.directive as Directive));
    stream.on('status', (s: grpc.StatusObject) => {
      this.status = s;
      this.endResolve();
    });
    stream.on('error', (e: grpc.ServiceError) => {
      this.error = e;
    });
    return this;
  }

  send(message: unknown): void {
    this.stream!.write(message as AgentMessage);
  }

  /** Resolves with the final status (the coordinator closed or refused the stream). */
  async closed(): Promise<grpc.StatusObject> {
    await this.ended;
    return this.status!;
  }

  unary(request: unknown, token = this.token): Promise<unknown> {
    const md = new grpc.Metadata();
    if (token) md.set('authorization', `Bearer ${token}`);
    return new Promise((resolve, reject) =>
      this.client.report(request as never, md, { deadline: Date.now() + 5000 }, (e, r) => (e ? reject(e) : resolve(r))),
    );
  }

  close(): void {
    this.stream?.end();
    this.stream?.cancel();
    this.client.close();
  }
}

/** An actuator that only records what it was told. */
export class RecordingActuator implements Actuator {
  readonly type = 'recording';
  readonly calls: Array<{ replicas: number; victims?: readonly string[] }> = [];
  assumeReplicas?: (replicas: number) => void;
  constructor(public count = 1) {}
  async getReplicas(): Promise<number> {
    return this.count;
  }
  async scaleTo(replicas: number, options: ScaleOptions = {}): Promise<void> {
    this.calls.push({ replicas, ...(options.victims ? { victims: options.victims } : {}) });
    this.count = replicas;
  }
  watch(): () => void {
    return () => {};
  }
  replicas(): readonly ReplicaInfo[] {
    return [];
  }
  async close(): Promise<void> {}
}

/**
 * A started in-process coordinator for one service, `orders` (agent token `token`), on loopback ports: decisions
 * an hour apart, a generous report rate limit, a RecordingActuator. The hostile-input suites send it what they like.
 */
export async function startOrdersCoordinator(token: string): Promise<Coordinator> {
  const coordinator = createCoordinator(
    {
      listen: { http: '127.0.0.1:0', grpc: '127.0.0.1:0' },
      syncPeriodMs: 3_600_000,
      limits: { reportsPerSecondPerInstance: 1000 },
      services: [
        {
          name: 'orders',
          token,
          policy: { targets: [{ metric: 'eventLoopUtilization', value: 0.5 }] },
          actuator: { type: 'command', command: 'true' },
        },
      ],
    },
    { actuatorFactory: () => new RecordingActuator(1) },
  );
  await coordinator.start();
  return coordinator;
}
