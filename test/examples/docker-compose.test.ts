/**
 * examples/docker-compose.yml needs images from a registry (Consul, node, the Docker CLI), which cannot be reached
 * here, so this test checks what can go wrong on a machine that has them: the file parses; the coordinator's inline config passes the real coordinator's schema
 * and matches the image's CMD and ports; every service's command exists in the build and reads the environment
 * variables the file sets; the tokens agree; the Prometheus relabelling uses the agent's real Consul Meta keys;
 * the coordinator's `command` actuator, run for real, calls `docker compose up --scale` on this very file and
 * project with the scaled service (a `docker` stand-in on the PATH records the command line).
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { METRICS_PATH_META_KEY, METRICS_PORT_META_KEY } from '@shoal/agent';
import { createActuator, parseConfigYaml } from '@shoal/coordinator';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const examples = join(root, 'examples');

/** Compose's interpolation for the forms the file uses: ${VAR:-default} (VAR unset), ${PWD} and $$ → $. */
function interpolate(text: string, env: Record<string, string> = {}): string {
  return text.replace(
    /\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?-([^}]*))?\}/g,
    (match, name: string, fallback?: string) => (match === '$$' ? '$' : (env[name] ?? fallback ?? '')),
  );
}

interface ComposeService {
  image?: string;
  build?: { context: string; dockerfile: string };
  volumes?: string[];
  user?: string;
  command?: string[];
  environment?: Record<string, string>;
  configs?: Array<{ source: string; target: string }>;
  ports?: string[];
  depends_on?: Record<string, { condition: string }>;
  deploy?: { replicas?: number };
  profiles?: string[];
}

interface ComposeFile {
  name: string;
  services: Record<string, ComposeService>;
  configs: Record<string, { content: string }>;
}

describe('examples/docker-compose.yml', () => {
  const raw = readFileSync(join(examples, 'docker-compose.yml'), 'utf8');
  // Run from the repository root, as the file says: ${PWD} is the repository's path.
  const compose = parse(interpolate(raw, { PWD: root }), { merge: true }) as ComposeFile;
  const { services } = compose;

  it('has a real Consul, the coordinator image built from its Dockerfile, and two services', () => {
    assert.match(services.consul!.image!, /^hashicorp\/consul:\d/);
    const build = services.coordinator!.build!;
    const dockerfile = join(examples, build.context, build.dockerfile);
    assert.ok(existsSync(dockerfile), `${dockerfile} exists`);
    assert.equal(resolve(examples, build.context), root, 'the build context is the repository root');
    // The coordinator image of packages/coordinator/Dockerfile plus the Docker CLI with its compose plugin.
    const extended = readFileSync(dockerfile, 'utf8');
    assert.match(extended, /^ARG COORDINATOR_IMAGE=shoal-coordinator:dev$/m);
    assert.match(extended, /^FROM \$\{COORDINATOR_IMAGE\}$/m);
    assert.match(extended, /cli-plugins\/docker-compose/);
    assert.ok(services.orders && services.greeter);
    for (const name of ['orders', 'greeter']) {
      assert.equal(services[name]!.depends_on?.consul?.condition, 'service_healthy');
      assert.equal(services[name]!.depends_on?.coordinator?.condition, 'service_healthy');
      assert.ok((services[name]!.deploy?.replicas ?? 1) >= 2, `${name} runs several replicas`);
    }
  });

  it('gives the coordinator a config that the real coordinator accepts, where the image reads it', () => {
    const mount = services.coordinator!.configs!.find((c) => c.target === '/etc/shoal/shoal.yaml');
    assert.ok(mount, 'mounted at /etc/shoal/shoal.yaml');
    const dockerfile = readFileSync(join(root, 'packages', 'coordinator', 'Dockerfile'), 'utf8');
    assert.match(dockerfile, /CMD \["--config", "\/etc\/shoal\/shoal\.yaml"\]/);
    const config = parseConfigYaml(compose.configs[mount.source]!.content, 'compose coordinator config');
    assert.equal(config.listen.http, '0.0.0.0:8080', 'the image HEALTHCHECK probes port 8080');
    // The HEALTHCHECK probes SHOAL_HEALTHCHECK_URL, else the CLI's default http://127.0.0.1:8080.
    assert.match(dockerfile, /"healthcheck"\]$/m);
    assert.equal(services.coordinator!.environment?.SHOAL_HEALTHCHECK_URL, undefined);
    assert.equal(config.consul?.url, 'http://consul:8500');
    const grpcPort = config.listen.grpc.split(':').pop();
    for (const service of config.services) {
      const container = services[service.name];
      assert.ok(container, `a compose service named ${service.name}`);
      const env = container.environment ?? {};
      assert.equal(env.SHOAL_COORDINATOR_TOKEN, service.token, `${service.name}'s token matches the coordinator's`);
      assert.equal(env.SHOAL_COORDINATOR_URL, `coordinator:${grpcPort}`);
    }
  });

  it('runs commands that exist in the build and read exactly the variables the file sets', () => {
    for (const name of ['orders', 'greeter']) {
      const s = services[name]!;
      assert.equal(s.command![0], 'node');
      const dist = join(root, s.command![1]!);
      assert.ok(existsSync(dist), `${s.command![1]} is built (npm run build)`);
      const source = readFileSync(dist.replace(/\/dist\/(.*)\.js$/, '/src/$1.ts'), 'utf8');
      for (const variable of Object.keys(s.environment ?? {})) {
        assert.match(source, new RegExp(`\\benv\\.${variable}\\b`), `${name} reads ${variable}`);
      }
      for (const flag of s.command!.slice(2).filter((a) => a.startsWith('--'))) {
        assert.ok(
          source.includes(`${flag.slice(2)}:`) || source.includes(`'${flag.slice(2)}':`),
          `${name} takes ${flag}`,
        );
      }
    }
  });

  it('scales for real: the command actuator runs `docker compose up --scale` on this file and project', async () => {
    const coordinator = services.coordinator!;
    assert.ok(coordinator.volumes?.includes('/var/run/docker.sock:/var/run/docker.sock'), 'the Docker socket');
    // The file is mounted where the host has it, so compose in the container resolves its relative paths the same.
    assert.ok(coordinator.volumes?.includes(`..:${root}:ro`), 'the repository at its host path');
    const mount = coordinator.configs!.find((c) => c.target === '/etc/shoal/shoal.yaml')!;
    const config = parseConfigYaml(compose.configs[mount.source]!.content, 'compose coordinator config');
    const bin = await mkdtemp(join(tmpdir(), 'shoal-compose-'));
    try {
      // A `docker` stand-in that records its arguments, one JSON array per call.
      const record = join(bin, 'calls.jsonl');
      await writeFile(
        join(bin, 'docker'),
        `#!${process.execPath}\nrequire('node:fs').appendFileSync(${JSON.stringify(record)}, JSON.stringify(process.argv.slice(2)) + '\\n');\n`,
        { mode: 0o755 },
      );
      for (const service of config.services) {
        assert.equal(service.actuator.type, 'command');
        const actuator = createActuator(service.actuator, {
          service: service.name,
          baseEnv: { PATH: `${bin}:${process.env.PATH ?? ''}` },
        });
        try {
          await actuator.scaleTo(5, { victims: [] });
        } finally {
          await actuator.close();
        }
        const calls = (await readFile(record, 'utf8')).trim().split('\n');
        const argv = JSON.parse(calls.at(-1)!) as string[];
        assert.deepEqual(argv, [
          'compose',
          `--project-name=${compose.name}`,
          `--file=${join(root, 'examples', 'docker-compose.yml')}`,
          'up',
          '--detach',
          '--no-deps',
          '--no-recreate',
          `--scale=${service.name}=5`,
          service.name,
        ]);
        assert.ok(existsSync(argv[2]!.slice('--file='.length)), 'the file it names is this one');
        assert.ok(services[service.name], `${service.name} is a service of the file`);
      }
    } finally {
      await rm(bin, { recursive: true, force: true });
    }
  });

  it("relabels Prometheus's Consul discovery with the agent's real Meta keys", () => {
    const inline = parse(compose.configs['prometheus-config']!.content) as {
      scrape_configs: Array<{ relabel_configs?: Array<{ source_labels?: string[]; replacement?: string }> }>;
    };
    const shipped = parse(readFileSync(join(examples, 'monitoring', 'prometheus-consul.yml'), 'utf8')) as typeof inline;
    for (const config of [inline, shipped]) {
      const labels = config.scrape_configs.flatMap((j) =>
        (j.relabel_configs ?? []).flatMap((r) => r.source_labels ?? []),
      );
      assert.ok(labels.includes(`__meta_consul_service_metadata_${METRICS_PORT_META_KEY}`));
      assert.ok(labels.includes(`__meta_consul_service_metadata_${METRICS_PATH_META_KEY}`));
      const address = config.scrape_configs
        .flatMap((j) => j.relabel_configs ?? [])
        .find((r) => r.replacement?.includes(':'));
      assert.equal(address?.replacement, '$1:$2', 'compose escapes $ as $$');
    }
  });
});
