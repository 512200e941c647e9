import { monitorEventLoopDelay, performance, type EventLoopUtilization, type IntervalHistogram } from 'node:perf_hooks';
import { LIMITS } from '@shoal/protocol';

export interface RuntimeSample {
  eventLoopUtilization: number;
  eventLoopDelayP99Ms: number;
  cpu: number;
  rssBytes: number;
  heapUsedBytes: number;
}

/**
 * Process signals over an interval: event-loop utilization (`performance.eventLoopUtilization`), event-loop delay
 * p99 (`monitorEventLoopDelay`), CPU in cores (`process.cpuUsage`) and memory. Each `sample()` covers the time
 * since the previous one. CPU is divided by real elapsed time (it measures real resources, whatever clock the
 * agent's timers use).
 */
export class RuntimeSampler {
  private elu: EventLoopUtilization;
  private cpu: NodeJS.CpuUsage;
  private at: number;
  private readonly delay: IntervalHistogram;

  constructor(private readonly resolutionMs: number) {
    this.delay = monitorEventLoopDelay({ resolution: resolutionMs });
    this.delay.enable();
    this.elu = performance.eventLoopUtilization();
    this.cpu = process.cpuUsage();
    this.at = performance.now();
  }

  sample(): RuntimeSample {
    const elu = performance.eventLoopUtilization();
    const utilization = performance.eventLoopUtilization(elu, this.elu).utilization;
    this.elu = elu;
    const now = performance.now();
    const cpu = process.cpuUsage();
    const cpuMicros = cpu.user - this.cpu.user + (cpu.system - this.cpu.system);
    const elapsedMs = Math.max(1, now - this.at);
    this.cpu = cpu;
    this.at = now;
    // percentile() is in nanoseconds and includes the sampling timer's own period, which is not delay.
    const delayNs = this.delay.count > 0 ? this.delay.percentile(99) - this.resolutionMs * 1e6 : 0;
    this.delay.reset();
    const memory = process.memoryUsage();
    return {
      eventLoopUtilization: clamp(utilization, 0, 1),
      eventLoopDelayP99Ms: clamp(delayNs / 1e6, 0, LIMITS.maxIntervalMs),
      cpu: clamp(cpuMicros / 1000 / elapsedMs, 0, LIMITS.maxCpuCores),
      rssBytes: memory.rss,
      heapUsedBytes: memory.heapUsed,
    };
  }

  close(): void {
    this.delay.disable();
  }
}

function clamp(value: number, min: number, max: number): number {
  if (!Number.isFinite(value)) return min;
  return value < min ? min : value > max ? max : value;
}
