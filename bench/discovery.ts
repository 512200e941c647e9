/**
 * Discovery benchmark (`npm run bench:discovery`, `-- --quick` for a short run).
 *
 * 1. Propagation: 50 ServiceWatchers (each its own client and blocking query, as 50 client processes would have)
 *    and, in the same run against the same changes, 50 pollers that GET the passing list every 1 s (the baseline).
 *    A change is an instance appearing (t0 = its ServiceRegistration.register() resolved) or going away
 *    (t0 = close() resolved). For each change we record when the LAST of the 50 saw it; p50/p99 over the changes.
 * 2. Cost: one ServiceWatcher watching 100 services × 10 instances (idle, then under churn), against 100 pollers at
 *    1 s in the same run: CPU time and heap of this process (Consul runs in a child process, so its work is not counted).
 *
 * Consul is @shoal/consul-dev in a child process on 127.0.0.1. The last line printed is one JSON object with every figure.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { cpus, loadavg } from 'node:os';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import Consul from 'consul';
import { Registry } from 'prom-client';
import { ServiceRegistration, ServiceWatcher } from '@shoal/consul';

const quick = process.argv.includes('--quick');
const WATCHERS = 50;
const CHANGES = quick ? 40 : 200; // half appear, half go away
const SPACING_MS = 150; // one change every 150 ms (the watcher's default minQueryIntervalMs is 100)
const LIFETIME_MS = 2250; // an instance lives this long (so 1 s pollers see both of its changes); changes stay 150 ms apart
const POLL_MS = 1000;
const COST_SERVICES = 100;
const COST_INSTANCES = 10;
const COST_PHASE_MS = quick ? 5000 : 15000;

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

/**
 * consul-dev in a child process, which also drives the churn of the cost phase (so neither Consul's work nor the
 * churn requests are counted in this process's CPU time).
 */
async function startConsulChild(): Promise<{ url: string; proc: ChildProcess }> {
  const code = `
    import { startConsulDev } from '@shoal/consul-dev';
    const s = await startConsulDev({ host: '127.0.0.1', port: 0 });
    let churning = false;
    process.on('message', async (m) => {
      if (m.churn === 'stop') { churning = false; return; }
      churning = true;
      let n = 0;
      while (churning) {
        const svc = n % ${COST_SERVICES};
        const i = Math.floor(n / ${COST_SERVICES}) % ${COST_INSTANCES};
        // Every update changes the instance's weight, so every one is a real change a watcher must report.
        await fetch(s.url + '/v1/agent/service/register', { method: 'PUT', body: JSON.stringify({
          Name: 'svc-' + svc, ID: 'svc-' + svc + '-' + i, Address: '127.0.0.1', Port: 20000 + i,
          Meta: { weight: String(2 + (n % 9000)) } }) }).then((r) => r.arrayBuffer());
        n++;
        await new Promise((r) => setTimeout(r, 1000 / m.perSecond));
      }
      process.send({ churned: n });
    });
    process.on('SIGTERM', () => s.close().then(() => process.exit(0)));
    process.stdout.write(s.url + '\\n');
  `;
  const proc = spawn(process.execPath, ['--input-type=module', '-e', code], {
    stdio: ['ignore', 'pipe', 'inherit', 'ipc'],
  });
  const url = await new Promise<string>((resolve, reject) => {
    proc.once('exit', (c) => reject(new Error(`consul-dev exited with ${c}`)));
    proc.stdout!.once('data', (d: Buffer) => resolve(d.toString().trim()));
  });
  return { url, proc };
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i]!;
}

const round = (n: number, d = 1) => Math.round(n * 10 ** d) / 10 ** d;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Tracks, for one observer, when each instance id was first seen present and first seen absent after that. */
class Sightings {
  readonly appeared = new Map<string, number>();
  readonly vanished = new Map<string, number>();
  observe(ids: Iterable<string>, at: number): void {
    const now = new Set(ids);
    for (const id of now) if (!this.appeared.has(id)) this.appeared.set(id, at);
    for (const id of this.appeared.keys()) if (!now.has(id) && !this.vanished.has(id)) this.vanished.set(id, at);
  }
}

async function propagation(url: string) {
  const service = 'bench-propagation';
  const watchers = Array.from({ length: WATCHERS }, () => new ServiceWatcher({ consul: { url } }));
  const watchSightings = watchers.map(() => new Sightings());
  const watches = watchers.map((w, i) => {
    const watch = w.watch(service);
    watch.onChange((list) =>
      watchSightings[i]!.observe(
        list.map((x) => x.id),
        performance.now(),
      ),
    );
    return watch;
  });
  await Promise.all(watches.map((w) => w.ready()));

  const pollSightings = Array.from({ length: WATCHERS }, () => new Sightings());
  const pollClients = pollSightings.map(() => new Consul({ baseUrl: `${url}/v1` } as never));
  let polling = true;
  const pollers = pollClients.map(async (client, i) => {
    await sleep(Math.random() * POLL_MS); // random phase, as independent processes would have
    while (polling) {
      const started = performance.now();
      const body = (await client.health.service({ service, passing: true } as never)) as Array<{
        Service: { ID: string };
      }>;
      pollSightings[i]!.observe(
        body.map((e) => e.Service.ID),
        performance.now(),
      );
      await sleep(Math.max(0, POLL_MS - (performance.now() - started)));
    }
  });

  const instances = CHANGES / 2;
  const appearT0 = new Map<string, number>();
  const vanishT0 = new Map<string, number>();
  const start = performance.now();
  const tasks: Promise<void>[] = [];
  for (let i = 0; i < instances; i++) {
    const id = `bench-${i}`;
    tasks.push(
      (async () => {
        await sleep(Math.max(0, start + i * 2 * SPACING_MS - performance.now()));
        const reg = new ServiceRegistration({ consul: { url }, service, id, address: '127.0.0.1', port: 10000 + i });
        await reg.register();
        appearT0.set(id, performance.now());
        await sleep(Math.max(0, start + i * 2 * SPACING_MS + LIFETIME_MS - performance.now()));
        await reg.close();
        vanishT0.set(id, performance.now());
      })(),
    );
  }
  await Promise.all(tasks);
  // Let the slowest poller see the last change.
  const deadline = performance.now() + 3 * POLL_MS;
  const allSeen = (s: Sightings[]) => s.every((x) => x.vanished.size === instances);
  while ((!allSeen(pollSightings) || !allSeen(watchSightings)) && performance.now() < deadline) await sleep(20);
  polling = false;
  await Promise.all(pollers);
  for (const c of pollClients) c.destroy();
  await Promise.all(watchers.map((w) => w.close()));

  const lastSeen = (sightings: Sightings[]) => {
    const lat: number[] = [];
    const perKind = { appeared: [] as number[], vanished: [] as number[] };
    const anyWatcher: number[] = [];
    let missed = 0;
    for (const [kind, t0s] of [
      ['appeared', appearT0],
      ['vanished', vanishT0],
    ] as const) {
      for (const [id, t0] of t0s) {
        let worst = 0;
        for (const s of sightings) {
          const seen = s[kind].get(id);
          if (seen === undefined) {
            missed++;
            worst = Number.POSITIVE_INFINITY;
            break;
          }
          anyWatcher.push(Math.max(0, seen - t0));
          worst = Math.max(worst, seen - t0);
        }
        if (Number.isFinite(worst)) {
          lat.push(Math.max(0, worst));
          perKind[kind].push(Math.max(0, worst));
        }
      }
    }
    for (const l of [lat, perKind.appeared, perKind.vanished, anyWatcher]) l.sort((a, b) => a - b);
    return {
      p50: round(percentile(lat, 50)),
      p99: round(percentile(lat, 99)),
      max: round(lat.at(-1) ?? NaN),
      changes: lat.length,
      missed,
      appearP99: round(percentile(perKind.appeared, 99)),
      vanishP99: round(percentile(perKind.vanished, 99)),
      /** Over every (change, observer) pair rather than the last observer per change. */
      perObserverP50: round(percentile(anyWatcher, 50)),
      perObserverP99: round(percentile(anyWatcher, 99)),
    };
  };
  return { blocking: lastSeen(watchSightings), polling: lastSeen(pollSightings) };
}

async function registerBulk(url: string) {
  // Plain HTTP registrations without checks (passing): the cost phase measures watching, not heartbeating.
  for (let s = 0; s < COST_SERVICES; s++) {
    await Promise.all(
      Array.from({ length: COST_INSTANCES }, (_, i) =>
        fetch(`${url}/v1/agent/service/register`, {
          method: 'PUT',
          body: JSON.stringify({
            Name: `svc-${s}`,
            ID: `svc-${s}-${i}`,
            Address: '127.0.0.1',
            Port: 20000 + i,
            Meta: { weight: '1' },
          }),
        }).then((r) => r.arrayBuffer()),
      ),
    );
  }
}

const CHURN_PER_SECOND = 10;

/** Asks the Consul child to churn until the returned function is called; resolves with the number of updates. */
function startChurn(proc: ChildProcess): () => Promise<number> {
  proc.send({ churn: 'start', perSecond: CHURN_PER_SECOND });
  return async () => {
    const done = new Promise<number>((resolve) => proc.once('message', (m: { churned: number }) => resolve(m.churned)));
    proc.send({ churn: 'stop' });
    return done;
  };
}

interface CostFigures {
  cpuMsPerSecIdle: number;
  cpuMsPerSecChurn: number;
  heapMB: number;
  requestsPerSecIdle: number;
  updates: number;
  changesSeen: number;
}

async function measure(
  run: () => Promise<{ stop(): Promise<void>; requests(): Promise<number>; changes(): number }>,
  consulProc: ChildProcess,
): Promise<CostFigures> {
  gc();
  const heapBefore = process.memoryUsage().heapUsed;
  const target = await run();
  await sleep(500);
  gc();
  const heapMB = (process.memoryUsage().heapUsed - heapBefore) / 1024 / 1024;
  let cpu = process.cpuUsage();
  let t = performance.now();
  const req = await target.requests();
  await sleep(COST_PHASE_MS);
  const idleCpu = process.cpuUsage(cpu);
  const idleSecs = (performance.now() - t) / 1000;
  const requestsPerSecIdle = ((await target.requests()) - req) / idleSecs;
  cpu = process.cpuUsage();
  t = performance.now();
  const changesBefore = target.changes();
  const stopChurn = startChurn(consulProc);
  await sleep(COST_PHASE_MS);
  const updates = await stopChurn();
  await sleep(POLL_MS + 200); // let 1 s pollers catch up with the last updates
  const churnCpu = process.cpuUsage(cpu);
  const churnSecs = (performance.now() - t) / 1000;
  await target.stop();
  return {
    cpuMsPerSecIdle: round((idleCpu.user + idleCpu.system) / 1000 / idleSecs, 2),
    cpuMsPerSecChurn: round((churnCpu.user + churnCpu.system) / 1000 / churnSecs, 2),
    heapMB: round(heapMB, 2),
    requestsPerSecIdle: round(requestsPerSecIdle, 1),
    updates,
    changesSeen: target.changes() - changesBefore,
  };
}

async function cost(url: string, consulProc: ChildProcess) {
  await registerBulk(url);
  const blocking = await measure(async () => {
    const registry = new Registry();
    const watcher = new ServiceWatcher({ consul: { url }, registry });
    let changes = 0;
    const watches = Array.from({ length: COST_SERVICES }, (_, s) => watcher.watch(`svc-${s}`));
    for (const w of watches) w.onChange(() => changes++);
    await Promise.all(watches.map((w) => w.ready()));
    return {
      stop: () => watcher.close(),
      requests: async () => {
        const metric = await registry.getSingleMetric('shoal_consul_watch_queries_total')!.get();
        return metric.values.reduce((a, v) => a + v.value, 0);
      },
      changes: () => changes,
    };
  }, consulProc);
  const polling = await measure(async () => {
    const client = new Consul({ baseUrl: `${url}/v1` } as never);
    let requests = 0;
    let changes = 0;
    let running = true;
    const last = new Map<string, string>();
    const loops = Array.from({ length: COST_SERVICES }, async (_, s) => {
      await sleep(Math.random() * POLL_MS);
      while (running) {
        const started = performance.now();
        const body = await client.health.service({ service: `svc-${s}`, passing: true } as never);
        requests++;
        const text = JSON.stringify(body);
        if (last.get(`svc-${s}`) !== text) changes++;
        last.set(`svc-${s}`, text);
        await sleep(Math.max(0, POLL_MS - (performance.now() - started)));
      }
    });
    await sleep(POLL_MS + 100);
    return {
      stop: async () => {
        running = false;
        await Promise.all(loops);
        client.destroy();
      },
      requests: async () => requests,
      changes: () => changes,
    };
  }, consulProc);
  return { blocking, polling };
}

async function main() {
  const loadAtStart = round(loadavg()[0]!, 2);
  const { url, proc } = await startConsulChild();
  try {
    process.stdout.write(
      `consul-dev child at ${url}; ${quick ? 'quick' : 'full'} run; ${cpus().length} CPUs, 1-min load average ${loadAtStart}\n`,
    );
    const prop = await propagation(url);
    const c = await cost(url, proc);
    const rows = [
      ['propagation to all 50 (ms)', 'p50', 'p99', 'max', 'per-observer p99', 'changes', 'missed'],
      ...(['blocking', 'polling'] as const).map((k) => [
        k === 'blocking' ? 'blocking ServiceWatcher' : '1 s polling',
        prop[k].p50,
        prop[k].p99,
        prop[k].max,
        prop[k].perObserverP99,
        prop[k].changes,
        prop[k].missed,
      ]),
    ];
    const costRows = [
      ['100 services × 10 instances', 'CPU ms/s idle', 'CPU ms/s churn', 'heap MB', 'req/s idle', 'updates/seen'],
      [
        'blocking ServiceWatcher',
        c.blocking.cpuMsPerSecIdle,
        c.blocking.cpuMsPerSecChurn,
        c.blocking.heapMB,
        c.blocking.requestsPerSecIdle,
        `${c.blocking.updates}/${c.blocking.changesSeen}`,
      ],
      [
        '1 s polling',
        c.polling.cpuMsPerSecIdle,
        c.polling.cpuMsPerSecChurn,
        c.polling.heapMB,
        c.polling.requestsPerSecIdle,
        `${c.polling.updates}/${c.polling.changesSeen}`,
      ],
    ];
    for (const table of [rows, costRows]) {
      for (const r of table) process.stdout.write(r.map((x, i) => String(x).padEnd(i === 0 ? 30 : 18)).join('') + '\n');
      process.stdout.write('\n');
    }
    const ratios = {
      p50SpeedupVsPolling: round(prop.polling.p50 / Math.max(prop.blocking.p50, 0.1)),
      p99SpeedupVsPolling: round(prop.polling.p99 / Math.max(prop.blocking.p99, 0.1)),
      idleCpuRatioVsPolling: round(c.blocking.cpuMsPerSecIdle / Math.max(c.polling.cpuMsPerSecIdle, 0.01), 3),
      churnCpuRatioVsPolling: round(c.blocking.cpuMsPerSecChurn / Math.max(c.polling.cpuMsPerSecChurn, 0.01), 3),
    };
    process.stdout.write(
      `blocking vs polling: p50 ${ratios.p50SpeedupVsPolling}× faster, p99 ${ratios.p99SpeedupVsPolling}× faster; ` +
        `idle CPU ${ratios.idleCpuRatioVsPolling}× and churn CPU ${ratios.churnCpuRatioVsPolling}× of polling\n`,
    );
    process.stdout.write(
      JSON.stringify({
        bench: 'discovery',
        quick,
        node: process.version,
        cpus: cpus().length,
        loadAvg1mAtStart: loadAtStart,
        loadAvg1mAtEnd: round(loadavg()[0]!, 2),
        watchers: WATCHERS,
        changes: CHANGES,
        changeSpacingMs: SPACING_MS,
        propagationMs: prop,
        cost: { services: COST_SERVICES, instancesPerService: COST_INSTANCES, phaseMs: COST_PHASE_MS, ...c },
        ratios,
      }) + '\n',
    );
  } finally {
    proc.kill('SIGTERM');
  }
}

await main();
