/**
 * What `import('@shoal/coordinator')` costs a process, and what it would cost if it still loaded
 * `@kubernetes/client-node` at import (it now loads it only when a Kubernetes actuator is created).
 *
 * Each round starts fresh Node processes, alternating the order:
 *   coordinator   `await import('@shoal/coordinator')`, timed inside the child;
 *   eager         `await import('@kubernetes/client-node')` then `await import('@shoal/coordinator')`: the old cost
 *                 (the coordinator used to import the client at module load);
 *   k8s-actuator  `import('@shoal/coordinator')` then create a `kubernetes` actuator and wait until its client
 *                 loaded: what a Kubernetes deployment pays, now deferred to actuator creation.
 *
 *   npm run bench:import                  # 7 rounds
 *   npm run bench:import -- --rounds 15
 *
 * Figures are medians in milliseconds; `ratio` is coordinator / eager. The last line is one JSON object.
 */
import { execFileSync } from 'node:child_process';
import { cpus, loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));

const SCRIPTS = {
  coordinator: `const t = performance.now(); await import('@shoal/coordinator');
    process.stdout.write(String(performance.now() - t));`,
  eager: `const t = performance.now(); await import('@kubernetes/client-node'); await import('@shoal/coordinator');
    process.stdout.write(String(performance.now() - t));`,
  'k8s-actuator': `const t = performance.now(); const { createActuator } = await import('@shoal/coordinator');
    const { KubeConfig } = await import('@kubernetes/client-node');
    const kc = new KubeConfig();
    kc.loadFromOptions({ clusters: [{ name: 'c', server: 'http://127.0.0.1:9' }], users: [{ name: 'u' }],
      contexts: [{ name: 'x', cluster: 'c', user: 'u' }], currentContext: 'x' });
    const a = createActuator({ type: 'kubernetes', kind: 'Deployment', name: 'web', namespace: 'default',
      requestTimeoutMs: 1000 }, { service: 'web', kubeConfig: kc });
    process.stdout.write(String(performance.now() - t)); await a.close();`,
} as const;
type Mode = keyof typeof SCRIPTS;

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}

function once(mode: Mode): number {
  const out = execFileSync(process.execPath, ['--input-type=module', '-e', SCRIPTS[mode]], {
    cwd: root,
    encoding: 'utf8',
  });
  return Number(out);
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) >> 1]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
}

const rounds = arg('rounds', 7);
const modes = Object.keys(SCRIPTS) as Mode[];
const times: Record<Mode, number[]> = { coordinator: [], eager: [], 'k8s-actuator': [] };
const loadBefore = loadavg()[0]!;
once('coordinator'); // warm the file system cache
once('eager');
for (let r = 0; r < rounds; r++) {
  const order = r % 2 ? [...modes].reverse() : modes;
  for (const m of order) times[m].push(once(m));
}
const result = {
  bench: 'coordinator-import',
  rounds,
  cpus: cpus().length,
  load1: Number(((loadBefore + loadavg()[0]!) / 2).toFixed(2)),
  coordinatorMs: Number(median(times.coordinator).toFixed(1)),
  eagerMs: Number(median(times.eager).toFixed(1)),
  kubernetesActuatorMs: Number(median(times['k8s-actuator']).toFixed(1)),
  ratio: Number((median(times.coordinator) / median(times.eager)).toFixed(3)),
};
for (const m of modes)
  console.log(
    `${m.padEnd(13)} median ${median(times[m]).toFixed(1)} ms  (${times[m].map((t) => t.toFixed(0)).join(', ')})`,
  );
console.log(
  `import('@shoal/coordinator') takes ${result.ratio} of what it took with @kubernetes/client-node loaded eagerly`,
);
console.log(JSON.stringify(result));
