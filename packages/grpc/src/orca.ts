/**
 * `xds.data.orca.v3.OrcaLoadReport`, the message servers put in the `endpoint-load-metrics-bin` trailer (ORCA,
 * gRFC A51). Only this one small message is needed, so it is encoded and decoded by hand (protobuf wire format)
 * instead of loading a .proto at run time.
 *
 * Field numbers (xds/data/orca/v3/orca_load_report.proto): 1 cpu_utilization (double), 2 mem_utilization (double),
 * 3 rps (uint64, deprecated), 4 request_cost (map<string,double>), 5 utilization (map<string,double>),
 * 6 rps_fractional (double), 7 eps (double), 8 named_metrics (map<string,double>), 9 application_utilization (double).
 */
import { ProtocolError } from '@shoal/core';

export interface OrcaLoadReport {
  cpuUtilization?: number;
  memUtilization?: number;
  rps?: number;
  requestCost?: Record<string, number>;
  utilization?: Record<string, number>;
  rpsFractional?: number;
  eps?: number;
  namedMetrics?: Record<string, number>;
  applicationUtilization?: number;
}

const DOUBLE_FIELDS = {
  cpuUtilization: 1,
  memUtilization: 2,
  rpsFractional: 6,
  eps: 7,
  applicationUtilization: 9,
} as const;
const MAP_FIELDS = { requestCost: 4, utilization: 5, namedMetrics: 8 } as const;
const FIELD_DOUBLE: Record<number, keyof typeof DOUBLE_FIELDS> = {
  1: 'cpuUtilization',
  2: 'memUtilization',
  6: 'rpsFractional',
  7: 'eps',
  9: 'applicationUtilization',
};
const FIELD_MAP: Record<number, keyof typeof MAP_FIELDS> = { 4: 'requestCost', 5: 'utilization', 8: 'namedMetrics' };

class Writer {
  private chunks: Buffer[] = [];
  varint(value: number): void {
    const bytes: number[] = [];
    let v = value;
    while (v > 0x7f) {
      bytes.push((v & 0x7f) | 0x80);
      v = Math.floor(v / 128);
    }
    bytes.push(v);
    this.chunks.push(Buffer.from(bytes));
  }
  double(field: number, value: number): void {
    this.varint((field << 3) | 1);
    const b = Buffer.allocUnsafe(8);
    b.writeDoubleLE(value, 0);
    this.chunks.push(b);
  }
  bytes(field: number, value: Buffer): void {
    this.varint((field << 3) | 2);
    this.varint(value.length);
    this.chunks.push(value);
  }
  finish(): Buffer {
    return Buffer.concat(this.chunks);
  }
}

/** Encodes a load report; zero values are omitted, as proto3 does. */
export function encodeOrcaLoadReport(report: OrcaLoadReport): Buffer {
  const w = new Writer();
  for (const [name, field] of Object.entries(DOUBLE_FIELDS)) {
    const value = report[name as keyof typeof DOUBLE_FIELDS];
    if (value !== undefined && value !== 0 && Number.isFinite(value)) w.double(field, value);
  }
  if (report.rps !== undefined && report.rps > 0 && Number.isFinite(report.rps)) {
    w.varint((3 << 3) | 0);
    w.varint(Math.floor(report.rps));
  }
  for (const [name, field] of Object.entries(MAP_FIELDS)) {
    const map = report[name as keyof typeof MAP_FIELDS];
    if (!map) continue;
    for (const [key, value] of Object.entries(map)) {
      if (!Number.isFinite(value)) continue;
      const entry = new Writer();
      entry.bytes(1, Buffer.from(key, 'utf8'));
      entry.double(2, value);
      w.bytes(field, entry.finish());
    }
  }
  return w.finish();
}

class Reader {
  pos = 0;
  constructor(private readonly buf: Buffer) {}
  get done(): boolean {
    return this.pos >= this.buf.length;
  }
  varint(): number {
    let result = 0;
    let mul = 1;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.buf.length) throw new ProtocolError('ORCA load report: truncated varint');
      const b = this.buf[this.pos++]!;
      result += (b & 0x7f) * mul;
      if ((b & 0x80) === 0) return result;
      mul *= 128;
    }
    throw new ProtocolError('ORCA load report: varint longer than 10 bytes');
  }
  double(): number {
    if (this.pos + 8 > this.buf.length) throw new ProtocolError('ORCA load report: truncated double');
    const v = this.buf.readDoubleLE(this.pos);
    this.pos += 8;
    return v;
  }
  bytes(): Buffer {
    const len = this.varint();
    if (this.pos + len > this.buf.length) throw new ProtocolError('ORCA load report: truncated length-delimited field');
    const b = this.buf.subarray(this.pos, this.pos + len);
    this.pos += len;
    return b;
  }
  skip(wireType: number): void {
    if (wireType === 0) this.varint();
    else if (wireType === 1) this.pos += 8;
    else if (wireType === 2) this.bytes();
    else if (wireType === 5) this.pos += 4;
    else throw new ProtocolError(`ORCA load report: unsupported wire type ${wireType}`);
    if (this.pos > this.buf.length) throw new ProtocolError('ORCA load report: truncated field');
  }
}

function decodeMapEntry(buf: Buffer): [string, number] {
  const r = new Reader(buf);
  let key = '';
  let value = 0;
  while (!r.done) {
    const tag = r.varint();
    const field = tag >>> 3;
    const wire = tag & 7;
    if (field === 1 && wire === 2) key = r.bytes().toString('utf8');
    else if (field === 2 && wire === 1) value = r.double();
    else r.skip(wire);
  }
  return [key, value];
}

/** Decodes a load report; unknown fields are skipped, malformed input throws `ProtocolError`. */
export function decodeOrcaLoadReport(buf: Buffer): OrcaLoadReport {
  const r = new Reader(buf);
  const out: OrcaLoadReport = {};
  const maps = new Map<keyof typeof MAP_FIELDS, Array<[string, number]>>();
  while (!r.done) {
    const tag = r.varint();
    const field = tag >>> 3;
    const wire = tag & 7;
    const doubleName = FIELD_DOUBLE[field];
    const mapName = FIELD_MAP[field];
    if (doubleName !== undefined && wire === 1) {
      out[doubleName] = r.double();
    } else if (mapName !== undefined && wire === 2) {
      let entries = maps.get(mapName);
      if (!entries) maps.set(mapName, (entries = []));
      entries.push(decodeMapEntry(r.bytes()));
    } else if (field === 3 && wire === 0) {
      out.rps = r.varint();
    } else {
      r.skip(wire);
    }
  }
  // fromEntries defines own properties, so a key such as "__proto__" cannot reach a prototype.
  for (const [name, entries] of maps) out[name] = Object.fromEntries(entries);
  return out;
}
