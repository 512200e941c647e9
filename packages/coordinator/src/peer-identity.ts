import type { PeerCertificate, TLSSocket } from 'node:tls';

/**
 * The names a verified client certificate carries: its subject CN and its DNS subject alternative names. Under
 * `tls.requireClientCert` the TLS handshake already checked the chain against `tls.caFile`, so these names are the
 * peer's identity: an agent's certificate names its service, KEDA's names `keda.clientName`.
 */
export function certificateNames(cert: PeerCertificate | undefined): string[] {
  if (!cert || typeof cert !== 'object') return [];
  const names: string[] = [];
  const cn = cert.subject?.CN as unknown;
  if (typeof cn === 'string') names.push(cn);
  else if (Array.isArray(cn)) names.push(...cn.filter((x): x is string => typeof x === 'string'));
  for (const part of (cert.subjectaltname ?? '').split(',')) {
    const m = /^\s*DNS:(.+?)\s*$/.exec(part);
    if (m) names.push(m[1] as string);
  }
  return names;
}

/** A gRPC server call, as far as its peer's certificate goes. */
export interface PeerCall {
  getAuthContext?: () => { sslPeerCertificate?: PeerCertificate } | null;
}

/** The names of a gRPC call's verified client certificate (empty without one). */
export function grpcPeerNames(call: PeerCall): string[] {
  return certificateNames(call.getAuthContext?.()?.sslPeerCertificate);
}

/** The names of an HTTPS request's verified client certificate (empty without one, or when it did not verify). */
export function tlsSocketPeerNames(socket: unknown): string[] {
  const s = socket as Partial<TLSSocket> | undefined;
  if (!s || typeof s.getPeerCertificate !== 'function' || s.authorized !== true) return [];
  return certificateNames(s.getPeerCertificate());
}
