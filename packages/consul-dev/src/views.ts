import { formatGoDuration } from './duration.js';
import type { CheckDefinition, CheckRecord, NodeRecord, ServiceRecord } from './catalog.js';

/** JSON shapes exactly as Consul's Go structs marshal them (PascalCase keys, empty arrays/maps never null). */

const emptyProxy = () => ({ Mode: '', MeshGateway: {}, Expose: {} });

function durationOrEmpty(ms: number | undefined): string {
  return ms === undefined ? '' : formatGoDuration(ms);
}

function taggedNodeAddresses(address: string) {
  return { lan: address, lan_ipv4: address, wan: address, wan_ipv4: address };
}

export function nodeView(node: NodeRecord) {
  return {
    ID: node.id,
    Node: node.name,
    Address: node.address,
    Datacenter: node.datacenter,
    TaggedAddresses: taggedNodeAddresses(node.address),
    Meta: { ...node.meta },
    CreateIndex: node.createIndex,
    ModifyIndex: node.modifyIndex,
  };
}

export function healthServiceView(svc: ServiceRecord) {
  return {
    ID: svc.id,
    Service: svc.name,
    Tags: [...svc.tags],
    Address: svc.address,
    ...(Object.keys(svc.taggedAddresses).length > 0 ? { TaggedAddresses: cloneTagged(svc) } : {}),
    Meta: { ...svc.meta },
    Port: svc.port,
    Weights: { ...svc.weights },
    EnableTagOverride: svc.enableTagOverride,
    Proxy: emptyProxy(),
    Connect: svc.connectNative ? { Native: true } : {},
    PeerName: '',
    CreateIndex: svc.createIndex,
    ModifyIndex: svc.modifyIndex,
  };
}

function cloneTagged(svc: ServiceRecord) {
  const out: Record<string, { Address: string; Port: number }> = {};
  for (const [k, v] of Object.entries(svc.taggedAddresses)) out[k] = { Address: v.Address, Port: v.Port };
  return out;
}

function checkType(def: CheckDefinition): string {
  switch (def.kind) {
    case 'maintenance':
      return '';
    default:
      return def.kind;
  }
}

function definitionView(def: CheckDefinition) {
  return {
    ...(def.http ? { HTTP: def.http } : {}),
    ...(def.header ? { Header: def.header } : {}),
    ...(def.method ? { Method: def.method } : {}),
    ...(def.body ? { Body: def.body } : {}),
    ...(def.tlsServerName ? { TLSServerName: def.tlsServerName } : {}),
    ...(def.tlsSkipVerify ? { TLSSkipVerify: true } : {}),
    ...(def.tcp ? { TCP: def.tcp } : {}),
    ...(def.grpc ? { GRPC: def.grpc } : {}),
    ...(def.grpcUseTls ? { GRPCUseTLS: true } : {}),
    ...(def.intervalMs !== undefined ? { Interval: formatGoDuration(def.intervalMs) } : {}),
    ...(def.timeoutMs !== undefined ? { Timeout: formatGoDuration(def.timeoutMs) } : {}),
    ...(def.deregisterCriticalServiceAfterMs !== undefined
      ? { DeregisterCriticalServiceAfter: formatGoDuration(def.deregisterCriticalServiceAfterMs) }
      : {}),
  };
}

/** A check as health and catalog endpoints show it (`structs.HealthCheck`). */
export function healthCheckView(check: CheckRecord, node: NodeRecord, svc: ServiceRecord | undefined, agent = false) {
  return {
    Node: node.name,
    CheckID: check.id,
    Name: check.name,
    Status: check.status,
    Notes: check.notes,
    Output: agent ? check.output : check.catalogOutput,
    ServiceID: check.serviceId,
    ServiceName: check.serviceName,
    ServiceTags: svc && check.serviceId ? [...svc.tags] : [],
    Type: checkType(check.definition),
    Interval: durationOrEmpty(check.definition.intervalMs),
    Timeout: durationOrEmpty(check.definition.timeoutMs),
    ExposedPort: 0,
    Definition: definitionView(check.definition),
    CreateIndex: check.createIndex,
    ModifyIndex: check.modifyIndex,
  };
}

/** A service as `/v1/agent/services` shows it (`api.AgentService`). */
export function agentServiceView(svc: ServiceRecord, datacenter: string) {
  return {
    ID: svc.id,
    Service: svc.name,
    Tags: [...svc.tags],
    Meta: { ...svc.meta },
    Port: svc.port,
    Address: svc.address,
    ...(Object.keys(svc.taggedAddresses).length > 0 ? { TaggedAddresses: cloneTagged(svc) } : {}),
    Weights: { ...svc.weights },
    EnableTagOverride: svc.enableTagOverride,
    ...(svc.connectNative ? { Connect: { Native: true } } : {}),
    ...(svc.kind ? { Kind: svc.kind } : {}),
    Datacenter: datacenter,
  };
}

/** A ServiceNode as `/v1/catalog/service/:name` shows it. */
export function catalogServiceView(svc: ServiceRecord, node: NodeRecord) {
  return {
    ID: node.id,
    Node: node.name,
    Address: node.address,
    Datacenter: node.datacenter,
    TaggedAddresses: taggedNodeAddresses(node.address),
    NodeMeta: { ...node.meta },
    ServiceKind: svc.kind,
    ServiceID: svc.id,
    ServiceName: svc.name,
    ServiceTags: [...svc.tags],
    ServiceAddress: svc.address,
    ...(Object.keys(svc.taggedAddresses).length > 0 ? { ServiceTaggedAddresses: cloneTagged(svc) } : {}),
    ServiceWeights: { ...svc.weights },
    ServiceMeta: { ...svc.meta },
    ServicePort: svc.port,
    ServiceSocketPath: '',
    ServiceEnableTagOverride: svc.enableTagOverride,
    ServiceProxy: emptyProxy(),
    ServiceConnect: svc.connectNative ? { Native: true } : {},
    ServicePeerName: '',
    CreateIndex: svc.createIndex,
    ModifyIndex: svc.modifyIndex,
  };
}
