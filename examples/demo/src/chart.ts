/**
 * The run as an SVG chart: offered and served request rate with the replica count on top, latency quantiles and
 * errors below, the scenario's phases as bands and each scaling decision as a marker. Plain strings, no
 * dependency; the file opens in any browser.
 */
import type { DecisionRecord, Sample } from './recorder.js';
import type { Phase } from './scenario.js';

export interface ChartInput {
  title: string;
  samples: readonly Sample[];
  decisions: readonly DecisionRecord[];
  phases: readonly Phase[];
  durationMs: number;
}

const WIDTH = 960;
const LEFT = 64;
const RIGHT = 64;
const TOP = 48;
const RATE_HEIGHT = 260;
const GAP = 56;
const LATENCY_HEIGHT = 170;
const HEIGHT = TOP + RATE_HEIGHT + GAP + LATENCY_HEIGHT + 64;
const PLOT_WIDTH = WIDTH - LEFT - RIGHT;

const PHASE_FILL: Record<string, string> = {
  'warm-up': '#f4f6f8',
  'ramp-up': '#fff4e0',
  hold: '#ffe9c7',
  'ramp-down': '#fff4e0',
  'cool-down': '#eef6ee',
};

export function escapeXml(text: string): string {
  return text.replace(
    /[<>&'"]/g,
    (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', "'": '&apos;', '"': '&quot;' })[c]!,
  );
}

/** A "nice" axis maximum: 1, 2 or 5 times a power of ten, at least `value`. */
export function niceMax(value: number): number {
  if (!(value > 0)) return 1;
  const power = 10 ** Math.floor(Math.log10(value));
  for (const step of [1, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10]) if (step * power >= value) return step * power;
  return 10 * power;
}

/** A tick step of 1, 2 or 5 times a power of ten, at least `value`. */
function niceStep(value: number): number {
  if (!(value > 0)) return 1;
  const power = 10 ** Math.floor(Math.log10(value));
  for (const step of [1, 2, 5]) if (step * power >= value) return step * power;
  return 10 * power;
}

function fmt(n: number): string {
  return Number.isInteger(n) ? String(n) : n.toFixed(1);
}

function polyline(points: Array<[number, number]>, stroke: string, extra = ''): string {
  if (points.length === 0) return '';
  const d = points.map(([x, y]) => `${x.toFixed(1)},${y.toFixed(1)}`).join(' ');
  return `<polyline fill="none" stroke="${stroke}" stroke-width="2" ${extra} points="${d}"/>`;
}

function stepLine(points: Array<[number, number]>): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  for (const [i, p] of points.entries()) {
    const prev = points[i - 1];
    if (prev) out.push([p[0], prev[1]]);
    out.push(p);
  }
  return out;
}

/** The chart's scales: where a time and each panel's values fall. */
interface Layout {
  durationMs: number;
  x(tMs: number): number;
  maxRps: number;
  maxReplicas: number;
  maxLatency: number;
  rateTop: number;
  rateBottom: number;
  latTop: number;
  latBottom: number;
  yRate(v: number): number;
  yReplicas(v: number): number;
  yLatency(v: number): number;
}

function chartLayout(input: ChartInput): Layout {
  const { samples } = input;
  // The x axis ends at the last sample when the run ended early.
  const durationMs = Math.max(1, samples[samples.length - 1]?.tMs ?? input.durationMs);
  const maxRps = niceMax(Math.max(1, ...samples.map((s) => Math.max(s.rps, s.targetRps))));
  const maxReplicas = Math.max(
    2,
    Math.ceil(Math.max(...samples.map((s) => Math.max(s.replicas, s.desired ?? 0)), 1) + 1),
  );
  const rateTop = TOP;
  const rateBottom = TOP + RATE_HEIGHT;
  const latTop = rateBottom + GAP;
  const latBottom = latTop + LATENCY_HEIGHT;
  const maxLatency = niceMax(Math.max(1, ...samples.map((s) => s.p99Ms ?? 0)));
  return {
    durationMs,
    x: (tMs) => LEFT + (Math.min(tMs, durationMs) / durationMs) * PLOT_WIDTH,
    maxRps,
    maxReplicas,
    maxLatency,
    rateTop,
    rateBottom,
    latTop,
    latBottom,
    yRate: (v) => rateBottom - (v / maxRps) * RATE_HEIGHT,
    yReplicas: (v) => rateBottom - (v / maxReplicas) * RATE_HEIGHT,
    yLatency: (v) => latBottom - (v / maxLatency) * LATENCY_HEIGHT,
  };
}

export function renderChart(input: ChartInput): string {
  const layout = chartLayout(input);
  const out: string[] = [];
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${HEIGHT}" viewBox="0 0 ${WIDTH} ${HEIGHT}" ` +
      `font-family="system-ui, -apple-system, Segoe UI, sans-serif" font-size="12">`,
  );
  out.push(`<rect width="${WIDTH}" height="${HEIGHT}" fill="#ffffff"/>`);
  out.push(`<text x="${LEFT}" y="26" font-size="16" font-weight="600">${escapeXml(input.title)}</text>`);

  out.push(...phaseBands(layout, input.phases));
  out.push(...axes(layout));
  out.push(...decisionMarkers(layout, input.decisions));
  out.push(...series(layout, input.samples));
  out.push(...framesAndLegend(layout));
  out.push('</svg>');
  return out.join('\n') + '\n';
}

/** Phase bands behind both panels. */
function phaseBands(layout: Layout, phases: ChartInput['phases']): string[] {
  const { durationMs, x, rateTop, latTop } = layout;
  const out: string[] = [];
  for (const phase of phases) {
    if (phase.startMs >= durationMs) continue;
    const x0 = x(phase.startMs);
    const w = Math.max(0, x(phase.endMs) - x0);
    const fill = PHASE_FILL[phase.name] ?? '#f8f8f8';
    out.push(
      `<rect x="${x0.toFixed(1)}" y="${rateTop}" width="${w.toFixed(1)}" height="${RATE_HEIGHT}" fill="${fill}"/>`,
    );
    out.push(
      `<rect x="${x0.toFixed(1)}" y="${latTop}" width="${w.toFixed(1)}" height="${LATENCY_HEIGHT}" fill="${fill}"/>`,
    );
    out.push(
      `<text x="${(x0 + w / 2).toFixed(1)}" y="${rateTop + 14}" text-anchor="middle" fill="#888">${escapeXml(phase.name)}</text>`,
    );
  }

  return out;
}

/** Axes and grid. */
function axes(layout: Layout): string[] {
  const { durationMs, x, maxRps, maxReplicas, maxLatency, yRate, yReplicas, yLatency, rateTop, latTop, latBottom } =
    layout;
  const out: string[] = [];
  for (let i = 0; i <= 4; i++) {
    const v = (maxRps * i) / 4;
    const y = yRate(v);
    out.push(`<line x1="${LEFT}" x2="${WIDTH - RIGHT}" y1="${y.toFixed(1)}" y2="${y.toFixed(1)}" stroke="#e3e3e3"/>`);
    out.push(`<text x="${LEFT - 6}" y="${(y + 4).toFixed(1)}" text-anchor="end" fill="#1f6feb">${fmt(v)}</text>`);
  }
  for (let r = 0; r <= maxReplicas; r++) {
    const y = yReplicas(r);
    out.push(`<text x="${WIDTH - RIGHT + 6}" y="${(y + 4).toFixed(1)}" fill="#d9480f">${r}</text>`);
  }
  for (let i = 0; i <= 4; i++) {
    const v = (maxLatency * i) / 4;
    const y = yLatency(v);
    out.push(`<line x1="${LEFT}" x2="${WIDTH - RIGHT}" y1="${y.toFixed(1)}" y2="${y.toFixed(1)}" stroke="#e3e3e3"/>`);
    out.push(`<text x="${LEFT - 6}" y="${(y + 4).toFixed(1)}" text-anchor="end">${fmt(v)}</text>`);
  }
  const seconds = durationMs / 1000;
  const tickStep = niceStep(seconds / 8);
  for (let s = 0; s <= seconds + 1e-9; s += tickStep) {
    const xs = x(s * 1000);
    out.push(
      `<line x1="${xs.toFixed(1)}" x2="${xs.toFixed(1)}" y1="${latBottom}" y2="${latBottom + 4}" stroke="#555"/>`,
    );
    out.push(`<text x="${xs.toFixed(1)}" y="${latBottom + 18}" text-anchor="middle">${fmt(s)} s</text>`);
  }
  out.push(
    `<text x="14" y="${(rateTop + RATE_HEIGHT / 2).toFixed(1)}" transform="rotate(-90 14 ${(rateTop + RATE_HEIGHT / 2).toFixed(1)})" text-anchor="middle" fill="#1f6feb">requests / s</text>`,
  );
  out.push(
    `<text x="${WIDTH - 14}" y="${(rateTop + RATE_HEIGHT / 2).toFixed(1)}" transform="rotate(90 ${WIDTH - 14} ${(rateTop + RATE_HEIGHT / 2).toFixed(1)})" text-anchor="middle" fill="#d9480f">replicas</text>`,
  );
  out.push(
    `<text x="14" y="${(latTop + LATENCY_HEIGHT / 2).toFixed(1)}" transform="rotate(-90 14 ${(latTop + LATENCY_HEIGHT / 2).toFixed(1)})" text-anchor="middle">latency (ms)</text>`,
  );

  return out;
}

/** Decisions as markers. */
function decisionMarkers(layout: Layout, decisions: ChartInput['decisions']): string[] {
  const { x, rateTop, rateBottom } = layout;
  const out: string[] = [];
  for (const d of decisions) {
    const xd = x(d.tMs);
    const colour = d.to > d.from ? '#2f9e44' : '#862e9c';
    const reason = escapeXml(d.reasons.join('; '));
    out.push(
      `<g><title>${escapeXml(`${fmt(d.tMs / 1000)} s: ${d.from} → ${d.to}`)}${reason ? `: ${reason}` : ''}</title>` +
        `<line x1="${xd.toFixed(1)}" x2="${xd.toFixed(1)}" y1="${rateTop + 20}" y2="${rateBottom}" stroke="${colour}" stroke-dasharray="2 3"/>` +
        `<text x="${(xd + 3).toFixed(1)}" y="${rateTop + 30}" fill="${colour}">→${d.to}</text></g>`,
    );
  }

  return out;
}

/** Series: offered and served rates, replicas serving and desired, p50 and p99, failed calls. */
function series(layout: Layout, samples: ChartInput['samples']): string[] {
  const { x, yRate, yReplicas, yLatency, latBottom } = layout;
  const out: string[] = [];
  out.push(
    polyline(
      samples.map((s) => [x(s.tMs), yRate(s.targetRps)]),
      '#8c8c8c',
      'stroke-dasharray="6 4"',
    ),
  );
  out.push(
    polyline(
      samples.map((s) => [x(s.tMs), yRate(s.rps)]),
      '#1f6feb',
    ),
  );
  const desired = samples
    .filter((s) => s.desired !== undefined)
    .map((s) => [x(s.tMs), yReplicas(s.desired!)] as [number, number]);
  out.push(polyline(stepLine(desired), '#d9480f', 'stroke-dasharray="4 3" stroke-opacity="0.6"'));
  out.push(polyline(stepLine(samples.map((s) => [x(s.tMs), yReplicas(s.replicas)])), '#d9480f'));
  out.push(
    polyline(
      samples.filter((s) => s.p50Ms !== undefined).map((s) => [x(s.tMs), yLatency(s.p50Ms!)]),
      '#2f9e44',
    ),
  );
  out.push(
    polyline(
      samples.filter((s) => s.p99Ms !== undefined).map((s) => [x(s.tMs), yLatency(s.p99Ms!)]),
      '#e03131',
    ),
  );
  for (const s of samples) {
    if (s.errors > 0) {
      out.push(
        `<circle cx="${x(s.tMs).toFixed(1)}" cy="${latBottom - 4}" r="4" fill="#e03131"><title>${s.errors} failed</title></circle>`,
      );
    }
  }

  return out;
}

/** Frames and legend. */
function framesAndLegend(layout: Layout): string[] {
  const { rateTop, latTop } = layout;
  const out: string[] = [];
  out.push(
    `<rect x="${LEFT}" y="${rateTop}" width="${PLOT_WIDTH}" height="${RATE_HEIGHT}" fill="none" stroke="#555"/>`,
  );
  out.push(
    `<rect x="${LEFT}" y="${latTop}" width="${PLOT_WIDTH}" height="${LATENCY_HEIGHT}" fill="none" stroke="#555"/>`,
  );
  const legend: Array<[string, string, string]> = [
    ['offered req/s', '#8c8c8c', '6 4'],
    ['served req/s', '#1f6feb', ''],
    ['replicas serving', '#d9480f', ''],
    ['desired', '#d9480f', '4 3'],
    ['p50', '#2f9e44', ''],
    ['p99', '#e03131', ''],
  ];
  let lx = LEFT;
  const ly = HEIGHT - 18;
  for (const [label, colour, dash] of legend) {
    out.push(
      `<line x1="${lx}" x2="${lx + 22}" y1="${ly - 4}" y2="${ly - 4}" stroke="${colour}" stroke-width="2"${dash ? ` stroke-dasharray="${dash}"` : ''}/>`,
    );
    out.push(`<text x="${lx + 27}" y="${ly}">${escapeXml(label)}</text>`);
    lx += 40 + label.length * 7;
  }
  return out;
}
