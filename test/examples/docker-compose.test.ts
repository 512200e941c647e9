/**
 * examples/docker-compose.yml cannot be run here (no Docker engine), so this test checks what can go wrong on a
 * machine that has one: the file parses; the coordinator's inline config passes the real coordinator's schema
 * and matches the image's CMD and ports; every service's command exists in the build and reads the environment
 * variables the file sets; the tokens agree; the Prometheus relabelling uses the agent's real Consul Meta keys.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { METRICS_PATH_META_KEY, METRICS_PORT_META_KEY } from '@shoal/agent';
import { parseConfigYaml } from '@shoal/coordinator';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const examples = join(root, 'examples');

/** Compose's interpolation for the forms the file uses: ${VAR:-default} (VAR unset) and $$ → $. */
function interpolate(text: string): string {
  return text.replace(
    /\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?-([^}]*))?\}/g,
    (match, _name: string, fallback?: string) => (match === '$$' ? '$' : (fallback ?? '')),
  );
}

interface ComposeService {
  image?: string;
  build?: { context: string; dockerfile: string };
  command?: string[];
  environment?: Record<string, string>;
  configs?: Array<{ source: string; target: string }>;
  ports?: string[];
  depends_on?: Record<string, { condition: string }>;
  deploy?: { replicas?: number };
  profiles?: string[];
}

interface ComposeFile {
  services: Record<string, ComposeService>;
  configs: Record<string, { content: string }>;
}

describe('examples/docker-compose.yml', () => {
  const raw = readFileSync(join(examples, 'docker-compose.yml'), 'utf8');
  const compose = parse(interpolate(raw), { merge: true }) as ComposeFile;
  const { services } = compose;

  it('has a real Consul, the coordinator image built from its Dockerfile, and two services', () => {
    assert.match(services.consul!.image!, /^hashicorp\/consul:\d/);
    const build = services.coordinator!.build!;
    const dockerfile = join(examples, build.context, build.dockerfile);
    assert.ok(existsSync(dockerfile), `${dockerfile} exists`);
    assert.equal(resolve(examples, build.context), root, 'the build context is the repository root');
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
    assert.match(dockerfile, /healthcheck", "--url", "http:\/\/127\.0\.0\.1:8080"/);
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
