/**
 * `npm run bench:cold-start` — waking a service from zero replicas by client calls (issue #20).
 *
 * A coordinator (local actuator) runs a service of `test/chaos/fixtures/agent-replica.mjs` (HTTP, @shoal/agent,
 * registered in a `@shoal/consul-dev`) with `minReplicas: 0` and a `wake` section (inFlight target 10 calls per
 * replica). From zero, a burst of 1, 10 and 100 concurrent requests goes out through `@shoal/http` with an
 * activator; for each burst: the first answer's latency, the last one's, failed requests, replicas started.
 *
 * The first call's latency is split in two, per burst: the replica's own process start (its spawn by the guard →
 * its first passing check in Consul, read from the actuator and a 5 ms poll of Consul) and Shoal's overhead (the
 * rest: the client's wait and report, the coordinator's decision, the local actuator's guard process, the watch
 * delivering the instance, the call). Measured separately too, right before each burst: the same replica program
 * started alone (no Shoal: spawn → passing), the baseline for the process-start figure. On a loaded machine both
 * process-start figures swing by seconds; the overhead is measured directly, not as a difference of two runs.
 * The timeline splits the first call into its steps (decision, spawn, registered, passing, released, answered);
 * Consul's side is read with blocking queries, so each step's time is not a poll interval late.
 * Goal: overhead < 1 s (Knative's published goal), 0 failed calls. The last line is one JSON object.
 */
import { spawn } from 'node:child_process';
import { availableParallelism, loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { createCoordinator, type Coordinator } from '@shoal/coordinator';
import { startConsulDev } from '@shoal/consul-dev';
import { Activator } from '@shoal/consul';
import { createDispatcher } from '@shoal/http';
import { request } from 'undici';

const REPLICA = fileURLToPath(new URL('../test/chaos/fixtures/agent-replica.mjs', import.meta.url));
const AGENT_TOKEN = 'cold-agent-token-0123456789';
const WAKE_TOKEN = 'cold-wake-token-0123456789';
/** `BURSTS=100 npm run bench:cold-start` runs only the bursts named (comma-separated). */
const BURSTS = process.env.BURSTS ? process.env.BURSTS.split(',').map(Number) : [1, 10, 100];
const PER_REPLICA = 10;

async function passing(consulUrl: string, service: string): Promise<number> {
  const res = await fetch(`${consulUrl}/v1/health/service/${service}?passing=true`);
  return ((await res.json()) as unknown[]).length;
}

/** Spawn → passing in Consul for the replica program alone (no coordinator, no guard), ms. */
async function processStart(consulUrl: string, coordinatorGrpc: string, i: number): Promise<number> {
  const port = 40_000 + Math.floor(Math.random() * 20_000);
  const service = `baseline${i}`;
  const started = performance.now();
  const child = spawn(process.execPath, [REPLICA], {
    stdio: 'ignore',
    env: {
      ...process.env,
      MODE: 'http',
      PORT: String(port),
      CONSUL_URL: consulUrl,
      SHOAL_SERVICE: service,
      SHOAL_INSTANCE_ID: `${service}-1`,
      SHOAL_COORDINATOR_URL: coordinatorGrpc,
      SHOAL_COORDINATOR_TOKEN: AGENT_TOKEN,
    },
  });
  try {
    for (;;) {
      if ((await passing(consulUrl, service)) > 0) return performance.now() - started;
      if (performance.now() - started > 60_000) throw new Error('the baseline replica never passed');
      await new Promise((r) => setTimeout(r, 5));
    }
  } finally {
    child.kill('SIGKILL');
  }
}

function coordinatorFor(consulUrl: string): Coordinator {
  return createCoordinator(
    {
      listen: { http: '127.0.0.1:0', grpc: '127.0.0.1:0' },
      syncPeriodMs: 5000,
      services: [
        {
          name: 'cold',
          token: AGENT_TOKEN,
          minReplicas: 0,
          maxReplicas: 10,
          idleCooldownMs: 600_000,
          wake: { token: WAKE_TOKEN },
          policy: { targets: [{ metric: 'inFlight', value: PER_REPLICA }], panic: false, forecast: false },
          actuator: {
            type: 'local',
            command: process.execPath,
            args: [REPLICA],
            env: { MODE: 'http', CONSUL_URL: consulUrl },
            stopTimeoutMs: 1000,
          },
        },
      ],
    },
    { env: process.env },
  );
}

interface Row {
  burst: number;
  firstCallMs: number;
  lastCallMs: number;
  failed: number;
  replicasStarted: number;
  /** The woken replica's spawn → passing in Consul. */
  processStartMs: number;
  /** The same program started alone right before the burst. */
  processStartAloneMs: number;
  overheadMs: number;
  /** Burst start → the coordinator's wake decision. */
  toDecisionMs: number;
  /** First passing → first answer. */
  passingToCallMs: number;
  /** The timeline of the first call, each step from the one before (ms). */
  timeline: {
    /** Burst start → the coordinator's wake decision. */
    decision: number;
    /** Decision → the first replica spawned (the local actuator: a free port, its guard process, the handshake). */
    spawn: number;
    /** Spawned → registered in Consul (the replica's own start: Node, its modules, listen, register). */
    registered: number;
    /** Registered → passing. */
    passing: number;
    /** Passing → the client's watch lists it and the waiting calls are released. */
    released: number;
    /** Released → the first answer. */
    answered: number;
  };
}

/**
 * Resolves with the epoch ms at which Consul first lists an instance of `service` (passing, or with `any` in any
 * state), by blocking queries: Consul answers the moment the list changes, so the time is not a poll interval late.
 */
function firstPassing(consulUrl: string, service: string, stop: { done: boolean }, any = false): Promise<number> {
  return (async () => {
    let index = '0';
    while (!stop.done) {
      try {
        const res = await fetch(
          `${consulUrl}/v1/health/service/${service}?index=${index}&wait=1s${any ? '' : '&passing=true'}`,
        );
        const list = (await res.json()) as unknown[];
        if (list.length > 0) return Date.now();
        index = res.headers.get('x-consul-index') ?? '0';
      } catch {
        await new Promise((r) => setTimeout(r, 5));
      }
    }
    return NaN;
  })();
}

/** Resolves with the epoch ms at which the activator first releases waiting calls (polled every 2 ms). */
function firstRelease(activator: Activator, service: string, stop: { done: boolean }): Promise<number> {
  return new Promise((resolve) => {
    let seen = 0;
    const timer = setInterval(() => {
      const n = activator.waiting(service);
      if (n < seen || stop.done) {
        clearInterval(timer);
        resolve(stop.done && n >= seen ? NaN : Date.now());
      }
      seen = Math.max(seen, n);
    }, 2);
  });
}

async function burst(consulUrl: string, size: number, processStartAloneMs: number): Promise<Row> {
  const coordinator = coordinatorFor(consulUrl);
  await coordinator.start();
  const activator = new Activator({ coordinator: coordinator.urls().http, token: WAKE_TOKEN, maxWaitMs: 60_000 });
  const dispatcher = createDispatcher({ consul: { url: consulUrl }, retry: false, activator });
  try {
    const stop = { done: false };
    const passingAt = firstPassing(consulUrl, 'cold', stop);
    const registeredAt = firstPassing(consulUrl, 'cold', stop, true);
    const releasedAt = firstRelease(activator, 'cold', stop);
    const epoch0 = Date.now();
    const t0 = performance.now();
    let first = Infinity;
    let last = 0;
    const results = await Promise.allSettled(
      Array.from({ length: size }, async () => {
        const res = await request('http://cold.service.consul/', { dispatcher });
        await res.body.text();
        const t = performance.now() - t0;
        first = Math.min(first, t);
        last = Math.max(last, t);
        if (res.statusCode !== 200) throw new Error(`status ${res.statusCode}`);
      }),
    );
    const failed = results.filter((r) => r.status === 'rejected').length;
    stop.done = true;
    const passedAt = await passingAt;
    const woke = coordinator.decisions('cold')!.find((d) => d.currentReplicas === 0 && d.applied);
    const spawnedAt = Math.min(
      ...coordinator
        .actuator('cold')!
        .replicas()
        .map((r) => r.startedAtMs ?? Infinity),
    );
    const processStartMs = passedAt - spawnedAt;
    const registered = await registeredAt;
    const released = await releasedAt;
    const decidedAt = woke?.atMs ?? NaN;
    return {
      burst: size,
      firstCallMs: Math.round(first),
      lastCallMs: Math.round(last),
      failed,
      replicasStarted: woke?.desiredReplicas ?? 0,
      processStartMs: Math.round(processStartMs),
      processStartAloneMs: Math.round(processStartAloneMs),
      overheadMs: Math.round(first - processStartMs),
      toDecisionMs: woke ? Math.round(woke.atMs - epoch0) : NaN,
      passingToCallMs: Math.round(epoch0 + first - passedAt),
      timeline: {
        decision: Math.round(decidedAt - epoch0),
        spawn: Math.round(spawnedAt - decidedAt),
        registered: Math.round(registered - spawnedAt),
        passing: Math.round(passedAt - registered),
        released: Math.round(released - passedAt),
        answered: Math.round(epoch0 + first - released),
      },
    };
  } finally {
    await dispatcher.close();
    await activator.close();
    await coordinator.close();
  }
}

async function main(): Promise<void> {
  const consul = await startConsulDev({ host: '127.0.0.1', port: 0 });
  const consulUrl = consul.url;
  try {
    // A coordinator only to give the baseline replicas an address to report to (their reports are refused: the
    // service is unknown, which does not slow their start).
    const probe = coordinatorFor(consulUrl);
    await probe.start();
    const rows: Row[] = [];
    for (const [i, size] of BURSTS.entries()) {
      const alone = await processStart(consulUrl, probe.urls().grpc, i);
      rows.push(await burst(consulUrl, size, alone));
    }
    await probe.close();
    const head = [
      'burst',
      'first call ms',
      'last call ms',
      'failed',
      'replicas started',
      'process start ms',
      'Shoal overhead ms',
      'burst → decision ms',
      'passing → first answer ms',
      'process alone ms',
    ];
    console.log(`| ${head.join(' | ')} |`);
    console.log(`| ${head.map((h) => '-'.repeat(h.length)).join(' | ')} |`);
    for (const r of rows) {
      const cells = [
        r.burst,
        r.firstCallMs,
        r.lastCallMs,
        r.failed,
        r.replicasStarted,
        r.processStartMs,
        r.overheadMs,
        r.toDecisionMs,
        r.passingToCallMs,
        r.processStartAloneMs,
      ];
      console.log(`| ${cells.map((c, k) => String(c).padStart(head[k]!.length)).join(' | ')} |`);
    }
    console.log('\nthe first call, step by step (ms): decision, spawn, registered, passing, released, answered');
    for (const r of rows) console.log(`  burst ${r.burst}: ${Object.values(r.timeline).join(', ')}`);
    const goals = {
      overheadUnder1s: rows.every((r) => r.overheadMs < 1000),
      noFailedCall: rows.every((r) => r.failed === 0),
      sizedToBurst: rows.every(
        (r) => r.replicasStarted === Math.min(10, Math.max(1, Math.ceil(r.burst / PER_REPLICA))),
      ),
    };
    console.log(
      `\ngoals: ${Object.entries(goals)
        .map(([k, v]) => `${k} ${v ? 'met' : 'NOT met'}`)
        .join(', ')}; load average ${loadavg()[0]!.toFixed(1)} on ${availableParallelism()} cores`,
    );
    console.log(
      JSON.stringify({
        bench: 'cold-start',
        node: process.version,
        cpus: availableParallelism(),
        loadAverage: Number(loadavg()[0]!.toFixed(1)),
        callsPerReplica: PER_REPLICA,
        rows,
        goals,
      }),
    );
  } finally {
    await consul.close();
  }
}

void main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
