/**
 * A hand-written SVG chart of one or more simulation runs over the same trace: per run, load vs ready
 * capacity (req/s, left axis) with replicas (right axis), and below it p95 latency against the SLO with the
 * violating seconds marked in red. No dependency; the output is a self-contained SVG string.
 */
import type { SimulationResult, TimelinePoint } from './simulate.js';

export interface SvgOptions {
  /** Chart title. Default: the trace name. */
  title?: string;
  /** Label per run. Default `run 1`, `run 2`, … */
  labels?: string[];
  /** Width in px. Default 960. */
  width?: number;
}

const COLORS = { load: '#6b7280', capacity: '#059669', replicas: '#d97706', latency: '#7c3aed', slo: '#dc2626' };

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

function niceStep(max: number, ticks: number): number {
  const raw = max / ticks;
  const mag = 10 ** Math.floor(Math.log10(raw || 1));
  const norm = raw / mag;
  return (norm <= 1 ? 1 : norm <= 2 ? 2 : norm <= 5 ? 5 : 10) * mag;
}

/** A tick step in natural time units (s, min, h, d) giving at most ~`ticks` ticks. */
function niceTimeStep(durationS: number, ticks: number): number {
  const steps = [
    1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400, 172800, 604800,
  ];
  for (const step of steps) if (durationS / step <= ticks) return step;
  return 604800 * Math.ceil(durationS / ticks / 604800);
}

function fmtNum(v: number): string {
  if (v >= 1e6) return `${+(v / 1e6).toFixed(1)}M`;
  if (v >= 1e3) return `${+(v / 1e3).toFixed(1)}k`;
  return `${+v.toFixed(v < 10 ? 1 : 0)}`;
}

function fmtTime(s: number, total: number): string {
  if (total > 2 * 86_400) return `${+(s / 86_400).toFixed(1)} d`;
  if (total > 3 * 3600) return `${+(s / 3600).toFixed(1)} h`;
  if (total > 600) return `${+(s / 60).toFixed(0)} min`;
  return `${s} s`;
}

function path(points: ReadonlyArray<[number, number]>, step = false): string {
  let d = '';
  points.forEach(([x, y], k) => {
    if (k === 0) d += `M${x.toFixed(1)},${y.toFixed(1)}`;
    else if (step) d += `H${x.toFixed(1)}V${y.toFixed(1)}`;
    else d += `L${x.toFixed(1)},${y.toFixed(1)}`;
  });
  return d;
}

/** Renders the runs (all over the same trace) as one SVG document. */
export function renderSimulationSvg(runs: SimulationResult | SimulationResult[], options: SvgOptions = {}): string {
  const list = Array.isArray(runs) ? runs : [runs];
  const first = list[0];
  if (!first) throw new Error('renderSimulationSvg needs at least one run');
  const width = options.width ?? 960;
  const left = 64;
  const right = 56;
  const plotW = width - left - right;
  const topH = 170;
  const latH = 60;
  const gap = 58;
  const header = 62;
  const panelH = topH + latH + gap;
  const height = header + list.length * panelH + 26;
  const duration = first.summary.durationS;
  const maxLoad = Math.max(1, ...list.flatMap((r) => r.timeline.map((p) => Math.max(p.load, p.capacity))));
  const maxReplicas = Math.max(1, ...list.flatMap((r) => r.timeline.map((p) => p.replicas)));
  const yStep = niceStep(maxLoad, 4);
  const yMax = Math.ceil(maxLoad / yStep) * yStep;
  const rStep = Math.max(1, niceStep(maxReplicas, 4));
  const rMax = Math.ceil(maxReplicas / rStep) * rStep;
  const x = (t: number): number => left + (t / Math.max(1, duration)) * plotW;
  const out: string[] = [];
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="system-ui, -apple-system, Segoe UI, sans-serif" font-size="11">`,
    `<rect width="100%" height="100%" fill="#ffffff"/>`,
    `<text x="${left}" y="20" font-size="15" font-weight="600">${esc(options.title ?? first.trace)}</text>`,
    `<g transform="translate(${left},40)">` +
      [
        ['load (req/s)', COLORS.load],
        ['ready capacity (req/s)', COLORS.capacity],
        ['replicas (right axis)', COLORS.replicas],
        ['p95 latency', COLORS.latency],
        ['SLO / violation', COLORS.slo],
      ]
        .map(
          ([label, color], k) =>
            `<rect x="${k * 165}" y="-8" width="12" height="3" fill="${color}"/><text x="${k * 165 + 16}" y="-3">${esc(label as string)}</text>`,
        )
        .join('') +
      `</g>`,
  );
  const xTickStep = niceTimeStep(duration, 10);
  list.forEach((run, k) => {
    const top = header + k * panelH + 8;
    const latTop = top + topH + 8;
    const yv = (v: number): number => top + topH - (v / yMax) * topH;
    const yr = (v: number): number => top + topH - (v / rMax) * topH;
    const slo = run.model.sloP95Ms;
    const latMax = Math.min(run.model.timeoutMs, slo * 3);
    const yl = (v: number): number => latTop + latH - (Math.min(v, latMax) / latMax) * latH;
    const label = options.labels?.[k] ?? `run ${k + 1}`;
    const s = run.summary;
    out.push(
      `<text x="${left}" y="${top - 4}" font-weight="600">${esc(label)}</text>`,
      `<text x="${left + plotW}" y="${top - 4}" text-anchor="end" fill="#374151">${esc(
        `replica-hours ${(s.replicaSeconds / 3600).toFixed(1)} · SLO-violation ${s.sloViolationSeconds} s · dropped ${fmtNum(s.droppedRequests)} · scale events ${s.scaleEvents} · reversals ${s.reversals}`,
      )}</text>`,
      `<rect x="${left}" y="${top}" width="${plotW}" height="${topH}" fill="#f9fafb" stroke="#e5e7eb"/>`,
      `<rect x="${left}" y="${latTop}" width="${plotW}" height="${latH}" fill="#f9fafb" stroke="#e5e7eb"/>`,
    );
    for (let v = 0; v <= yMax; v += yStep) {
      out.push(
        `<line x1="${left}" x2="${left + plotW}" y1="${yv(v).toFixed(1)}" y2="${yv(v).toFixed(1)}" stroke="#e5e7eb"/>`,
        `<text x="${left - 6}" y="${(yv(v) + 4).toFixed(1)}" text-anchor="end" fill="${COLORS.load}">${fmtNum(v)}</text>`,
      );
    }
    for (let v = 0; v <= rMax; v += rStep) {
      out.push(
        `<text x="${left + plotW + 6}" y="${(yr(v) + 4).toFixed(1)}" fill="${COLORS.replicas}">${fmtNum(v)}</text>`,
      );
    }
    for (let t = 0; t <= duration; t += xTickStep) {
      out.push(
        `<line x1="${x(t).toFixed(1)}" x2="${x(t).toFixed(1)}" y1="${latTop + latH}" y2="${latTop + latH + 4}" stroke="#9ca3af"/>`,
        `<text x="${x(t).toFixed(1)}" y="${latTop + latH + 16}" text-anchor="middle" fill="#6b7280">${fmtTime(t, duration)}</text>`,
      );
    }
    // SLO violations as red ticks under the latency strip.
    const bucket =
      run.timeline.length > 1 ? (run.timeline[1] as TimelinePoint).t - (run.timeline[0] as TimelinePoint).t : 1;
    for (const p of run.timeline) {
      if (p.sloViolationSeconds > 0) {
        out.push(
          `<rect x="${x(p.t).toFixed(1)}" y="${latTop}" width="${Math.max(1, (bucket / duration) * plotW).toFixed(1)}" height="${latH}" fill="${COLORS.slo}" fill-opacity="${Math.min(0.35, 0.08 + p.sloViolationSeconds / bucket / 3).toFixed(2)}"/>`,
        );
      }
    }
    const loadPts = run.timeline.map((p): [number, number] => [x(p.t), yv(p.load)]);
    const areaD = `${path(loadPts)}L${x(duration).toFixed(1)},${top + topH}L${left},${top + topH}Z`;
    out.push(
      `<path d="${areaD}" fill="${COLORS.load}" fill-opacity="0.18" stroke="none"/>`,
      `<path d="${path(loadPts)}" fill="none" stroke="${COLORS.load}" stroke-width="1"/>`,
      `<path d="${path(run.timeline.map((p): [number, number] => [x(p.t), yv(p.capacity)]))}" fill="none" stroke="${COLORS.capacity}" stroke-width="1.4"/>`,
      `<path d="${path(
        run.timeline.map((p): [number, number] => [x(p.t), yr(p.replicas)]),
        true,
      )}" fill="none" stroke="${COLORS.replicas}" stroke-width="1.2" stroke-dasharray="4 2"/>`,
      `<line x1="${left}" x2="${left + plotW}" y1="${yl(slo).toFixed(1)}" y2="${yl(slo).toFixed(1)}" stroke="${COLORS.slo}" stroke-dasharray="5 3"/>`,
      `<text x="${left - 6}" y="${(yl(slo) + 4).toFixed(1)}" text-anchor="end" fill="${COLORS.slo}">${fmtNum(slo)} ms</text>`,
      `<path d="${path(run.timeline.map((p): [number, number] => [x(p.t), yl(p.latencyP95Ms)]))}" fill="none" stroke="${COLORS.latency}" stroke-width="1"/>`,
    );
  });
  out.push(
    `<text x="${left}" y="${height - 8}" fill="#6b7280">${esc(
      `model: ${first.model.replicaCapacityRps} req/s per replica (${first.model.concurrency} × ${first.model.serviceTimeMs} ms ${first.model.serviceTimeDistribution}), cold start ${first.model.coldStartMs / 1000} s, SLO p95 ≤ ${first.model.sloP95Ms} ms`,
    )}</text>`,
    '</svg>',
  );
  return out.join('\n');
}
