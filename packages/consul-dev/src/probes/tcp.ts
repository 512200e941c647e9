import { connect } from 'node:net';
import type { CheckDefinition } from '../catalog.js';
import type { Probe, ProbeResult } from '../check-runner.js';
import { describeDialError } from './http.js';

/** Consul's `CheckTCP`: passing when a TCP connection opens (`TCP connect <addr>: Success`). */
export function tcpProbe(def: CheckDefinition): Probe {
  const address = def.tcp!;
  const at = address.lastIndexOf(':');
  const host = address.slice(0, at).replace(/^\[|\]$/g, '');
  const port = Number(address.slice(at + 1));
  return (signal) =>
    new Promise<ProbeResult>((resolve) => {
      if (at < 0 || !Number.isInteger(port)) {
        resolve({ status: 'critical', output: `dial tcp ${address}: missing port in address` });
        return;
      }
      const socket = connect({ host, port });
      const onAbort = () => {
        socket.destroy();
        resolve({ status: 'critical', output: `dial tcp ${address}: i/o timeout` });
      };
      signal.addEventListener('abort', onAbort, { once: true });
      socket.once('connect', () => {
        signal.removeEventListener('abort', onAbort);
        socket.destroy();
        resolve({ status: 'passing', output: `TCP connect ${address}: Success` });
      });
      socket.once('error', (err: NodeJS.ErrnoException) => {
        signal.removeEventListener('abort', onAbort);
        resolve({ status: 'critical', output: describeDialError(err, address) });
      });
    });
}
