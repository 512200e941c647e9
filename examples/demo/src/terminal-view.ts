/**
 * The live view. On a TTY it redraws one block in place (cursor up, clear to the end); otherwise it prints one
 * plain status line per tick and one line per decision, which reads well in CI logs and when piped.
 */
import type { DecisionRecord, Sample } from './recorder.js';
import type { Scenario } from './scenario.js';

export interface ViewState {
  elapsedMs: number;
  scenario: Scenario;
  sample: Sample;
  /** Every decision so far (the view shows the latest few and prints each new one once). */
  decisions: readonly DecisionRecord[];
  failedTotal: number;
  requestsTotal: number;
  lastFailure?: string | undefined;
  note?: string | undefined;
}

export interface ViewOutput {
  write(chunk: string): unknown;
}

const ESC = '\x1b[';

function fmtMs(v: number | undefined): string {
  return v === undefined ? '   –  ' : `${v.toFixed(1).padStart(6)}`;
}

function bar(fraction: number, width: number): string {
  const filled = Math.round(Math.min(1, Math.max(0, fraction)) * width);
  return '█'.repeat(filled) + '░'.repeat(width - filled);
}

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)}s`;
}

export function formatDecision(d: DecisionRecord): string {
  const arrow = d.to > d.from ? '▲' : d.to < d.from ? '▼' : '•';
  const reasons = d.reasons.length > 0 ? d.reasons.join('; ') : 'no reason given';
  return `${arrow} [${seconds(d.tMs).padStart(6)}] ${d.from} → ${d.to}: ${reasons}`;
}

export class TerminalView {
  private readonly out: ViewOutput;
  private readonly tty: boolean;
  private readonly width: number;
  private drawnLines = 0;
  private printedDecisions = 0;
  private closed = false;

  constructor(out: ViewOutput, options: { tty: boolean; columns?: number | undefined }) {
    this.out = out;
    this.tty = options.tty;
    this.width = Math.max(60, Math.min(options.columns ?? 100, 140));
    if (this.tty) this.out.write(`${ESC}?25l`);
  }

  /** A message that stays above the live block (e.g. "coordinator listening on ..."). */
  message(line: string): void {
    if (this.closed) return;
    this.clearBlock();
    this.out.write(`${line}\n`);
  }

  update(state: ViewState): void {
    if (this.closed) return;
    if (this.tty) this.redraw(state);
    else this.printPlain(state);
  }

  /** Restores the cursor; the last block stays on screen. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.tty) this.out.write(`${ESC}?25h`);
  }

  private clearBlock(): void {
    if (this.tty && this.drawnLines > 0) {
      this.out.write(`${ESC}${this.drawnLines}F${ESC}0J`);
      this.drawnLines = 0;
    }
  }

  private printPlain(state: ViewState): void {
    const { sample: s } = state;
    for (const d of state.decisions.slice(this.printedDecisions)) this.out.write(`decision ${formatDecision(d)}\n`);
    this.printedDecisions = state.decisions.length;
    this.out.write(
      `[${seconds(state.elapsedMs).padStart(6)}] ${s.phase.padEnd(9)} offered ${s.targetRps.toFixed(0).padStart(4)}/s` +
        ` served ${s.rps.toFixed(0).padStart(4)}/s  replicas ${s.replicas}` +
        (s.desired !== undefined ? ` (desired ${s.desired})` : '') +
        `  p50 ${fmtMs(s.p50Ms).trim()} ms  p99 ${fmtMs(s.p99Ms).trim()} ms  failed ${state.failedTotal}\n`,
    );
  }

  private redraw(state: ViewState): void {
    const { sample: s, scenario } = state;
    const progress = scenario.progress(state.elapsedMs);
    const lines: string[] = [];
    const bold = (t: string): string => `${ESC}1m${t}${ESC}0m`;
    const dim = (t: string): string => `${ESC}2m${t}${ESC}0m`;
    lines.push(bold('Shoal demo') + dim('  — a gRPC service scaling itself (Ctrl-C to stop)'));
    lines.push(
      `scenario  ${bar(progress, 20)} ${(progress * 100).toFixed(0).padStart(3)}%  ${seconds(state.elapsedMs)} / ` +
        `${seconds(scenario.durationMs)}  phase ${bold(s.phase)}`,
    );
    const maxReplicas = Math.max(s.replicas, s.desired ?? 0, 1);
    lines.push(
      `replicas  ${'▮'.repeat(s.replicas)}${'▯'.repeat(Math.max(0, maxReplicas - s.replicas))} ${s.replicas} serving` +
        (s.desired !== undefined ? `, ${s.desired} desired` : ''),
    );
    lines.push(
      `load      offered ${s.targetRps.toFixed(0).padStart(4)} req/s   served ${s.rps.toFixed(0).padStart(4)} req/s`,
    );
    lines.push(`latency   p50 ${fmtMs(s.p50Ms)} ms   p99 ${fmtMs(s.p99Ms)} ms`);
    const failed = state.failedTotal === 0 ? `${ESC}32m0${ESC}0m` : `${ESC}31m${state.failedTotal}${ESC}0m`;
    lines.push(`requests  ${state.requestsTotal} sent, failed ${failed}`);
    if (state.lastFailure) lines.push(`${ESC}31mlast failure: ${state.lastFailure}${ESC}0m`);
    lines.push(bold('decisions'));
    const recent = state.decisions.slice(-6);
    if (recent.length === 0) lines.push(dim('  (none yet: the coordinator decides every sync period)'));
    for (const d of recent) lines.push(`  ${formatDecision(d)}`);
    if (state.note) lines.push(dim(state.note));
    const clipped = lines.map((l) => clip(l, this.width));
    this.clearBlock();
    this.out.write(clipped.join('\n') + '\n');
    this.drawnLines = clipped.length;
  }
}

/** Clips a line to `width` visible characters, leaving ANSI escapes intact. */
export function clip(line: string, width: number): string {
  let visible = 0;
  let out = '';
  for (let i = 0; i < line.length; i++) {
    if (line[i] === '\x1b') {
      const end = line.indexOf('m', i);
      if (end !== -1) {
        out += line.slice(i, end + 1);
        i = end;
        continue;
      }
    }
    if (visible >= width - 1) return out + '…' + `${ESC}0m`;
    out += line[i];
    visible++;
  }
  return out;
}
