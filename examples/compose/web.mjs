// The service that examples/docker-compose.local.yml scales: an HTTP server with the Shoal agent, on the host's
// network, so each replica listens on a port of its own (PORT=0: the kernel picks one) and reports it to the
// coordinator at SHOAL_COORDINATOR_URL with SHOAL_COORDINATOR_TOKEN. SIGTERM (`docker stop`, compose scaling down)
// drains it: the agent stops taking work, finishes what is in flight, then the process exits 0. GET /slow?ms=N
// answers after N ms (at most 10 s): requests held open raise the in-flight count the coordinator scales on.
import http from 'node:http';
import { hostname } from 'node:os';
import { createAgent } from '@shoal/agent';

const server = http.createServer((req, res) => {
  const url = new URL(req.url ?? '/', 'http://web');
  const ms = url.pathname === '/slow' ? Math.min(Math.max(Number(url.searchParams.get('ms')) || 0, 0), 10_000) : 0;
  setTimeout(() => res.end('ok\n'), ms);
});
server.listen(Number(process.env.PORT ?? 0), '127.0.0.1', () => {
  const { port } = server.address();
  const agent = createAgent({
    service: 'web',
    port,
    address: '127.0.0.1',
    instanceId: `web-${hostname()}-${port}`,
    reportIntervalMs: 1000,
    coordinator: { url: process.env.SHOAL_COORDINATOR_URL, token: process.env.SHOAL_COORDINATOR_TOKEN },
    handleSignals: true, // drained: process.exit(0)
  });
  agent.instrumentHttpServer(server);
  void agent.start().then(() => console.log(JSON.stringify({ msg: 'web started', port })));
});
