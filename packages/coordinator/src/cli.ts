#!/usr/bin/env node
/* eslint-disable no-restricted-properties -- this is the application layer, the one place that reads the environment */
/**
 * `shoal-coordinator`: the coordinator as a program. This is the application layer: it reads argv, the
 * environment and files, creates the root pino logger, and handles signals (SIGTERM/SIGINT stop, SIGHUP reloads).
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import type { Coordinator } from './coordinator.js';
import type { Logger as PinoLogger } from 'pino';

const HELP = `Usage:
  shoal-coordinator --config shoal.yaml [options]
  shoal-coordinator simulate [args...]        run \`shoal simulate\` from @shoal/policy (same engine)
  shoal-coordinator healthcheck [--url URL]   exit 0 when the coordinator's /healthz answers 200
  shoal-coordinator status [SERVICE...] [--url URL] [--token-file PATH] [--json]
                                              each service's replicas, desired count, last decision and
                                              its reason, rollout state (the \`kubectl get hpa\` of Shoal)
  shoal-coordinator rollout status|pause|resume|undo SERVICE [--url URL] [--token-file PATH] [--json]
                                              show or steer a local actuator's rollout

Runs the Shoal coordinator: ingests agent reports (gRPC and POST /v1/report), decides replica counts with
@shoal/policy every sync period, and drives each service's actuator (local, kubernetes, command).

Options:
  -c, --config PATH     YAML config file (required; or SHOAL_COORDINATOR_CONFIG). Validated at start;
                        errors name the path and the value. SIGHUP reloads it; an invalid file keeps the
                        running config and logs why.
      --insecure-dev    Allow services without an agent token (laptops only). Without it the coordinator
                        refuses to start when a service has no token or tokenFile.
      --dry-run         Decide and log every decision, but never call an actuator.
      --keep-replicas   On SIGTERM/SIGINT, leave local replicas running for the next coordinator with the
                        same stateDir to adopt (a planned restart or upgrade); they stop by themselves if
                        none comes within the local actuator's orphanGraceMs.
      --check           Validate the config (and token files), print the result, and exit.
      --log-level LEVEL trace, debug, info (default), warn, error, fatal; or SHOAL_LOG_LEVEL.
  -h, --help            Show this help.
  -v, --version         Print the version.

healthcheck options:
      --url URL         Base URL of the HTTP API (default http://127.0.0.1:8080, or SHOAL_HEALTHCHECK_URL).

status and rollout options (a change of a local actuator's command/args/env/cwd, applied by SIGHUP, is
rolled out: new replicas start, count once ready, then old ones drain; a clear regression rolls back):
      --url URL         Base URL of the HTTP API (default http://127.0.0.1:8080, or SHOAL_COORDINATOR_HTTP_URL).
      --token-file PATH File holding the API token (else SHOAL_API_TOKEN). \`status\` and \`rollout status\`
                        take the read token (api.readToken) or the operator token (api.token); pause,
                        resume and undo need the operator token. The token is never printed.
      --json            Print the answer as JSON instead of a table or summary.

Signals: SIGTERM/SIGINT stop gracefully (loops, leader lock released, servers, local replicas stopped
unless --keep-replicas; a second signal exits at once); the last log line is {"msg":"exiting","code":N}, written
before the process exits. SIGHUP reloads the config file. A coordinator that
dies without stopping (crash, SIGKILL) leaves its local replicas running for orphanGraceMs; with a stateDir
in the config, the restarted coordinator adopts them.

Environment: local replicas inherit this process's environment plus PORT, SHOAL_INSTANCE_ID,
SHOAL_COORDINATOR_URL and SHOAL_COORDINATOR_TOKEN.

Exit codes: 0 ok, 1 runtime failure, 64 usage error, 78 invalid config.`;

const require = createRequire(import.meta.url);

function version(): string {
  return (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;
}

async function runSimulate(args: string[]): Promise<number> {
  let pkgPath: string;
  try {
    pkgPath = require.resolve('@shoal/policy/package.json');
  } catch {
    process.stderr.write('shoal simulate needs @shoal/policy installed\n');
    return 1;
  }
  const pkg = JSON.parse(readFileSync(pkgPath, 'utf8')) as { bin?: string | Record<string, string> };
  const bins = typeof pkg.bin === 'string' ? { shoal: pkg.bin } : (pkg.bin ?? {});
  const entry = bins.shoal ?? bins['shoal-simulate'] ?? bins['shoal-policy'];
  if (!entry) {
    process.stderr.write(
      'this @shoal/policy version has no `shoal simulate` CLI; call simulate() from @shoal/policy instead\n',
    );
    return 1;
  }
  const bin = resolve(dirname(pkgPath), entry);
  const forwarded = bins.shoal || bins['shoal-policy'] ? ['simulate', ...args] : args;
  return new Promise((resolveExit) => {
    const child = spawn(process.execPath, [bin, ...forwarded], { stdio: 'inherit' });
    child.on('exit', (code) => resolveExit(code ?? 1));
  });
}

async function runHealthcheck(args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options: { url: { type: 'string' } }, strict: true });
  const base = values.url ?? process.env.SHOAL_HEALTHCHECK_URL ?? 'http://127.0.0.1:8080';
  try {
    const res = await fetch(`${base.replace(/\/$/, '')}/healthz`, { signal: AbortSignal.timeout(3000) });
    return res.status === 200 ? 0 : 1;
  } catch {
    return 1;
  }
}

interface RolloutAnswer {
  service: string;
  state: string;
  paused: boolean;
  from?: { version: string };
  to?: { version: string };
  replicas: { desired: number; old: number; oldReady: number; new: number; newReady: number; draining: number };
  reason?: string;
  comparison?: { verdict: string };
  events: { atMs: number; message: string }[];
}

function formatRollout(r: RolloutAnswer): string {
  const lines = [
    `${r.service}: ${r.state}${r.paused ? ' (paused)' : ''}${r.from && r.to ? `  ${r.from.version} → ${r.to.version}` : ''}`,
    `  replicas: desired ${r.replicas.desired}; new ${r.replicas.newReady}/${r.replicas.new} ready; old ${r.replicas.oldReady}/${r.replicas.old} ready; draining ${r.replicas.draining}`,
  ];
  if (r.reason) lines.push(`  reason: ${r.reason}`);
  if (r.comparison?.verdict) lines.push(`  comparison: ${r.comparison.verdict}`);
  for (const e of r.events.slice(-5)) lines.push(`  ${new Date(e.atMs).toISOString()}  ${e.message}`);
  return lines.join('\n');
}

const API_OPTIONS = {
  url: { type: 'string' },
  json: { type: 'boolean' },
  'token-file': { type: 'string' },
} as const;

/** The API base URL and bearer token of the `status` and `rollout` commands (the token is never printed). */
function apiTarget(values: { url?: string; 'token-file'?: string }): { base: string; token?: string } | string {
  const base = (values.url ?? process.env.SHOAL_COORDINATOR_HTTP_URL ?? 'http://127.0.0.1:8080').replace(/\/$/, '');
  let token = process.env.SHOAL_API_TOKEN;
  const file = values['token-file'];
  if (file !== undefined) {
    try {
      token = readFileSync(file, 'utf8').trim();
    } catch (error) {
      return `--token-file ${JSON.stringify(file)} cannot be read: ${(error as NodeJS.ErrnoException).code ?? 'error'}`;
    }
    if (!token) return `--token-file ${JSON.stringify(file)} is empty`;
  }
  return { base, ...(token ? { token } : {}) };
}

/** One request to the coordinator's API: the JSON answer, or a message for stderr (never holding the token). */
async function callApi(
  target: { base: string; token?: string },
  method: 'GET' | 'POST',
  path: string,
): Promise<{ status: number; body: Record<string, unknown> } | string> {
  let res: Response;
  try {
    res = await fetch(`${target.base}${path}`, {
      method,
      headers: target.token ? { authorization: `Bearer ${target.token}` } : {},
      signal: AbortSignal.timeout(10_000),
    });
  } catch (error) {
    return `cannot reach the coordinator at ${target.base}: ${(error as Error).message}`;
  }
  const body = (await res.json().catch(() => ({}))) as Record<string, unknown>;
  return { status: res.status, body };
}

function refusal(what: string, status: number, body: Record<string, unknown>, write = false): string {
  const code = typeof body.code === 'string' ? ` [${body.code}]` : '';
  const hint =
    status !== 401
      ? ''
      : write
        ? ' (give the operator token, api.token of the config, with --token-file or SHOAL_API_TOKEN)'
        : ' (give the API token with --token-file or SHOAL_API_TOKEN: api.readToken or api.token of the config)';
  return `${what}: HTTP ${status}${code}: ${typeof body.error === 'string' ? body.error : 'no detail'}${hint}\n`;
}

async function runRollout(args: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({ args, options: API_OPTIONS, strict: true, allowPositionals: true });
  } catch (error) {
    process.stderr.write(`${(error as Error).message}\n\n${HELP}\n`);
    return 64;
  }
  const [action, service, ...extra] = parsed.positionals;
  if (!action || !['status', 'pause', 'resume', 'undo'].includes(action) || !service || extra.length > 0) {
    process.stderr.write(
      `usage: shoal-coordinator rollout status|pause|resume|undo SERVICE [--url URL] [--token-file PATH] [--json]\n`,
    );
    return 64;
  }
  const target = apiTarget(parsed.values);
  if (typeof target === 'string') {
    process.stderr.write(`${target}\n`);
    return 64;
  }
  const path = `/v1/services/${encodeURIComponent(service)}/rollout${action === 'status' ? '' : `/${action}`}`;
  const answer = await callApi(target, action === 'status' ? 'GET' : 'POST', path);
  if (typeof answer === 'string') {
    process.stderr.write(`${answer}\n`);
    return 1;
  }
  if (answer.status !== 200) {
    process.stderr.write(refusal(`${action} ${service}`, answer.status, answer.body, action !== 'status'));
    return 1;
  }
  const body = answer.body as unknown as RolloutAnswer;
  process.stdout.write(`${parsed.values.json ? JSON.stringify(body, null, 2) : formatRollout(body)}\n`);
  return 0;
}

interface ServiceAnswer {
  name: string;
  actuator: string;
  minReplicas: number;
  maxReplicas: number;
  currentReplicas?: number;
  desiredReplicas?: number;
  lastDecision?: {
    atMs: number;
    currentReplicas: number;
    desiredReplicas: number;
    reasons: string[];
    error?: string;
    applied: boolean;
  };
  rollout?: { state: string; paused: boolean; from?: string; to?: string; reason?: string; warning?: string };
  instances: { ready: boolean; draining: boolean; missing: boolean }[];
}

function age(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 120) return `${s}s`;
  if (s < 7200) return `${Math.round(s / 60)}m`;
  return `${Math.round(s / 3600)}h`;
}

/** The `status` table: one line per service, then any rollout warning in full. */
function formatStatus(services: ServiceAnswer[], nowMs: number): string {
  const header = [
    'SERVICE',
    'ACTUATOR',
    'MIN',
    'MAX',
    'REPLICAS',
    'DESIRED',
    'READY',
    'ROLLOUT',
    'LAST DECISION',
    'REASON',
  ];
  const rows = services.map((s) => {
    const d = s.lastDecision;
    const ready = s.instances.filter((i) => i.ready && !i.draining && !i.missing).length;
    const r = s.rollout;
    const rollout = r
      ? `${r.state}${r.paused ? ' (paused)' : ''}${r.from && r.to && r.state !== 'none' ? ` ${r.from}→${r.to}` : ''}${r.warning ? ' (!)' : ''}`
      : '-';
    const reason = d ? [...d.reasons, ...(d.error ? [`error: ${d.error}`] : [])].join('; ') : '';
    return [
      s.name,
      s.actuator,
      String(s.minReplicas),
      String(s.maxReplicas),
      s.currentReplicas === undefined ? '?' : String(s.currentReplicas),
      s.desiredReplicas === undefined ? '?' : String(s.desiredReplicas),
      `${ready}/${s.instances.length}`,
      rollout,
      d
        ? `${d.currentReplicas}→${d.desiredReplicas}${d.applied ? '' : ' (not applied)'} ${age(nowMs - d.atMs)} ago`
        : '-',
      reason || '-',
    ];
  });
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] as string).length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] as number)))
      .join('  ')
      .trimEnd();
  const out = [line(header), ...rows.map(line)];
  for (const s of services) if (s.rollout?.warning) out.push('', `${s.name}: WARNING: ${s.rollout.warning}`);
  if (services.length === 0) out.push('(no services)');
  return out.join('\n');
}

async function runStatus(args: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({ args, options: API_OPTIONS, strict: true, allowPositionals: true });
  } catch (error) {
    process.stderr.write(`${(error as Error).message}\n\n${HELP}\n`);
    return 64;
  }
  const target = apiTarget(parsed.values);
  if (typeof target === 'string') {
    process.stderr.write(`${target}\n`);
    return 64;
  }
  const answer = await callApi(target, 'GET', '/v1/services');
  if (typeof answer === 'string') {
    process.stderr.write(`${answer}\n`);
    return 1;
  }
  if (answer.status !== 200) {
    process.stderr.write(refusal('status', answer.status, answer.body));
    return 1;
  }
  let services = (answer.body.services ?? []) as ServiceAnswer[];
  const wanted = parsed.positionals;
  const unknown = wanted.filter((w) => !services.some((s) => s.name === w));
  if (unknown.length > 0) {
    process.stderr.write(
      `no service ${unknown.map((u) => JSON.stringify(u)).join(', ')} (the coordinator has ${services.map((s) => s.name).join(', ') || 'none'})\n`,
    );
    return 1;
  }
  if (wanted.length > 0) services = services.filter((s) => wanted.includes(s.name));
  if (parsed.values.json) {
    const out = services.map((s) => ({
      name: s.name,
      actuator: s.actuator,
      minReplicas: s.minReplicas,
      maxReplicas: s.maxReplicas,
      replicas: s.currentReplicas ?? null,
      desired: s.desiredReplicas ?? null,
      ready: s.instances.filter((i) => i.ready && !i.draining && !i.missing).length,
      instances: s.instances.length,
      lastDecision: s.lastDecision ?? null,
      rollout: s.rollout ?? null,
    }));
    process.stdout.write(`${JSON.stringify({ coordinator: answer.body.coordinator, services: out }, null, 2)}\n`);
  } else {
    process.stdout.write(`${formatStatus(services, Date.now())}\n`);
  }
  return 0;
}

async function main(argv: string[]): Promise<number> {
  if (argv[0] === 'simulate') return runSimulate(argv.slice(1));
  if (argv[0] === 'rollout') return runRollout(argv.slice(1));
  if (argv[0] === 'status') return runStatus(argv.slice(1));
  if (argv[0] === 'healthcheck') return runHealthcheck(argv.slice(1));
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        config: { type: 'string', short: 'c' },
        'insecure-dev': { type: 'boolean' },
        'dry-run': { type: 'boolean' },
        'keep-replicas': { type: 'boolean' },
        check: { type: 'boolean' },
        'log-level': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
        version: { type: 'boolean', short: 'v' },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (error) {
    process.stderr.write(`${(error as Error).message}\n\n${HELP}\n`);
    return 64;
  }
  if (values.help) {
    process.stdout.write(`${HELP}\n`);
    return 0;
  }
  if (values.version) {
    process.stdout.write(`${version()}\n`);
    return 0;
  }
  const configPath = values.config ?? process.env.SHOAL_COORDINATOR_CONFIG;
  if (!configPath) {
    process.stderr.write(`--config is required\n\n${HELP}\n`);
    return 64;
  }
  const level = values['log-level'] ?? process.env.SHOAL_LOG_LEVEL ?? 'info';
  if (!['trace', 'debug', 'info', 'warn', 'error', 'fatal'].includes(level)) {
    process.stderr.write(
      `--log-level must be one of trace, debug, info, warn, error, fatal, got ${JSON.stringify(level)}\n`,
    );
    return 64;
  }
  // Loaded after argument parsing, so --help and usage errors answer at once.
  const [{ pino }, { Registry, collectDefaultMetrics }, { isShoalError }, { createCoordinator }, { loadConfigFile }] =
    await Promise.all([
      import('pino'),
      import('prom-client'),
      import('@shoal/core'),
      import('./coordinator.js'),
      import('./config.js'),
    ]);
  // Synchronous writes: the coordinator logs little (refusals and per-sync lines are rate-limited), and a line
  // written is a line kept — in order with the `listening` line, and up to the last one when a signal ends the
  // process (an asynchronous destination can lose or reorder what is in flight at exit).
  const logger = pino(
    {
      level,
      base: { pid: process.pid },
      redact: {
        paths: ['token', '*.token', 'authorization', '*.authorization', 'secret', '*.secret'],
        censor: '[redacted]',
      },
    },
    pino.destination({ dest: 1, sync: true }),
  );
  rootLogger = logger;
  const overrides = {
    ...(values['insecure-dev'] ? { insecureDev: true } : {}),
    ...(values['dry-run'] ? { dryRun: true } : {}),
    ...(process.env.SHOAL_ADVERTISE_HOST ? { advertiseHost: process.env.SHOAL_ADVERTISE_HOST } : {}),
  };
  const readConfig = () => loadConfigFile(configPath, overrides);

  let coordinator: Coordinator;
  try {
    const config = await readConfig();
    if (values.check) {
      const { resolveServiceTokens } = await import('./auth.js');
      await resolveServiceTokens(config, dirname(resolve(configPath)));
      process.stdout.write(`${configPath}: ok (${config.services.length} service(s))\n`);
      return 0;
    }
    const registry = new Registry();
    collectDefaultMetrics({ register: registry });
    const { dropMisnamedDefaultMetrics } = await import('./metrics.js');
    dropMisnamedDefaultMetrics(registry);
    coordinator = createCoordinator(config, {
      logger,
      registry,
      env: process.env,
      baseDir: dirname(resolve(configPath)),
    });
    await coordinator.start();
  } catch (error) {
    const code = (error as { code?: string }).code;
    if (code === 'SHOAL_ERR_CONFIG' || (isShoalError(error) && error.code === 'SHOAL_ERR_CONFIG')) {
      process.stderr.write(`${(error as Error).message}\n`);
      return 78;
    }
    logger.fatal({ err: { message: (error as Error).message, code } }, 'coordinator failed to start');
    return 1;
  }
  running = true;
  const urls = coordinator.urls();
  process.stdout.write(`${JSON.stringify({ msg: 'listening', http: urls.http, grpc: urls.grpc, keda: urls.keda })}\n`);

  process.on('SIGHUP', () => {
    readConfig()
      .then((next) => coordinator.reload(next))
      .then(() => logger.info('config reloaded (SIGHUP)'))
      .catch((error: unknown) =>
        logger.error(
          { err: { message: (error as Error).message, code: (error as { code?: string }).code } },
          'config reload failed; keeping the running config',
        ),
      );
  });
  return new Promise<number>((resolveExit) => {
    let stopping = false;
    const stop = (signal: string) => {
      if (stopping) {
        logger.warn({ signal }, 'second signal: exiting now');
        resolveExit(1);
        return;
      }
      stopping = true;
      logger.info({ signal }, 'stopping');
      const deadline = setTimeout(() => {
        logger.error('shutdown took longer than 30 s; exiting');
        resolveExit(1);
      }, 30_000);
      deadline.unref();
      coordinator.close({ keepLocalReplicas: values['keep-replicas'] === true }).then(
        () => resolveExit(0),
        (error: unknown) => {
          logger.error({ err: { message: (error as Error).message } }, 'shutdown failed');
          resolveExit(1);
        },
      );
    };
    process.on('SIGTERM', () => stop('SIGTERM'));
    process.on('SIGINT', () => stop('SIGINT'));
  });
}

/** The CLI's pino logger once created: its last lines are flushed before the process exits. */
let rootLogger: PinoLogger | undefined;
/** Set once the coordinator runs: its exit is logged too. */
let running = false;

/**
 * Logs `exiting` and exits with `code` once the log is flushed (the destination is synchronous, so this is at
 * once; `flush` is kept so a custom asynchronous destination would not lose its tail). Gives up waiting after 5 s.
 */
function exitAfterFlush(code: number): void {
  process.exitCode = code;
  const logger = rootLogger;
  if (logger === undefined) {
    setTimeout(() => process.exit(code), 0).unref();
    return;
  }
  if (running) logger.info({ code }, 'exiting');
  const fallback = setTimeout(() => process.exit(code), 5000);
  fallback.unref();
  logger.flush((error) => {
    if (error) process.stderr.write(`flushing the log failed: ${error.message}\n`);
    // Leave even if a stray handle is open.
    process.exit(code);
  });
}

main(process.argv.slice(2)).then(exitAfterFlush, (error: unknown) => {
  process.stderr.write(`${(error as Error).stack ?? String(error)}\n`);
  process.exit(1);
});
