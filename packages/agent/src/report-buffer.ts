import type { LoadReport } from '@shoal/protocol';
import type { AgentSignals } from './agent-metrics.js';

/**
 * The bounded queue of reports waiting for the coordinator: when full, the oldest report is dropped and counted;
 * `pendingDropped` is what the coordinator has not been told yet (it travels in the next delivered report's
 * `droppedReports`).
 */
export class ReportBuffer {
  private readonly items: LoadReport[] = [];
  /** Dropped reports the coordinator has not been told about. */
  pendingDropped = 0;
  /** Reports delivered / dropped since start. */
  sent = 0;
  dropped = 0;

  constructor(
    private readonly capacity: number,
    private readonly metrics: AgentSignals,
  ) {}

  get length(): number {
    return this.items.length;
  }

  /** The oldest report, or undefined when empty. */
  get head(): LoadReport | undefined {
    return this.items[0];
  }

  /** Appends a report, dropping (and counting) the oldest beyond the capacity. */
  push(report: LoadReport): void {
    this.items.push(report);
    while (this.items.length > this.capacity) this.dropHead();
  }

  /** Removes the oldest report, counted as dropped. */
  dropHead(): void {
    if (this.items.shift() === undefined) return;
    this.pendingDropped++;
    this.dropped++;
    this.metrics.reports.inc({ result: 'dropped' });
  }

  /** Removes `report` if it is still the oldest (the buffer may have dropped it meanwhile) and counts it sent. */
  delivered(report: LoadReport): void {
    if (this.items[0] === report) this.items.shift();
    this.sent++;
    this.metrics.reports.inc({ result: 'sent' });
  }
}
