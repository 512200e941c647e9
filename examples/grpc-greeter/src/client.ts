// A Greeter client that finds the servers in Consul and balances with shoal_peak_ewma.
// Run: CONSUL_HTTP_ADDR=127.0.0.1:8500 node dist/client.js [calls] [name]
import type * as grpc from '@grpc/grpc-js';
import { createClient, register } from '@shoal/grpc';
import { GreeterClient } from './greeter.js';
import type { HelloReply } from './greeter.js';

const consulUrl = process.env.CONSUL_HTTP_ADDR ?? '127.0.0.1:8500';
const calls = Number(process.argv[2] ?? 5);
const name = process.argv[3] ?? 'shoal';

// Installs the consul: resolver and the shoal_* policies into this process's grpc-js.
register({ consul: { url: consulUrl } });

const client = createClient(GreeterClient, 'consul:///greeter', {
  policy: 'shoal_peak_ewma',
  // Retry calls that fail with UNAVAILABLE (e.g. an instance crashed) on another instance.
  retry: { maxAttempts: 3 },
});

function sayHello(): Promise<HelloReply> {
  return new Promise((resolve, reject) =>
    client.sayHello({ name }, { deadline: Date.now() + 5000 }, (err: grpc.ServiceError | null, reply: HelloReply) =>
      err ? reject(err) : resolve(reply),
    ),
  );
}

try {
  for (let i = 0; i < calls; i++) {
    const reply = await sayHello();
    console.log(`${reply.message} (from ${reply.instance})`);
  }
} finally {
  client.close();
}
