import type { CheckDefinition } from '../catalog.js';
import type { Probe } from '../check-runner.js';
import { grpcProbe } from './grpc.js';
import { httpProbe } from './http.js';
import { tcpProbe } from './tcp.js';

/** The probe that runs a check of this kind, or undefined for kinds the double does not run (UDP, H2PING, alias). */
export function probeFor(def: CheckDefinition): Probe | undefined {
  switch (def.kind) {
    case 'http':
      return httpProbe(def);
    case 'tcp':
      return tcpProbe(def);
    case 'grpc':
      return grpcProbe(def);
    case 'udp':
    case 'h2ping':
      return async () => ({
        status: 'critical',
        output: `${def.kind.toUpperCase()} checks are not implemented by shoal-consul-dev`,
      });
    default:
      return undefined;
  }
}
