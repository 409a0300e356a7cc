import { monitorEventLoopDelay, PerformanceObserver, type IntervalHistogram } from 'node:perf_hooks';
import type { ProcessMetrics } from '../rpc/types.js';

/**
 * The process's own figures (memory, event-loop delay, garbage collection, CPU), the same in
 * every weir process. Sampled on demand, about once a second: the event-loop histogram is
 * reset at each sample, so its figures cover the interval since the previous one.
 */
export class ProcessMetricsSampler {
  private readonly delay: IntervalHistogram = monitorEventLoopDelay({ resolution: 10 });
  private readonly gc: PerformanceObserver;
  private gcCount = 0;
  private gcTimeMs = 0;
  /** set by the owner: bytes of local RocksDB state, measured on its own schedule */
  rocksdbDiskBytes = 0;

  constructor() {
    this.delay.enable();
    this.gc = new PerformanceObserver((list) => {
      for (const e of list.getEntries()) {
        this.gcCount++;
        this.gcTimeMs += e.duration;
      }
    });
    this.gc.observe({ entryTypes: ['gc'] });
  }

  sample(): ProcessMetrics {
    const mem = process.memoryUsage();
    const cpu = process.cpuUsage();
    const ns = (v: number): number => (Number.isFinite(v) ? v / 1e6 : 0);
    const out: ProcessMetrics = {
      rssBytes: mem.rss,
      heapUsedBytes: mem.heapUsed,
      heapTotalBytes: mem.heapTotal,
      externalBytes: mem.external,
      eventLoopDelayMeanMs: ns(this.delay.mean),
      eventLoopDelayP99Ms: ns(this.delay.percentile(99)),
      eventLoopDelayMaxMs: ns(this.delay.max),
      gcCount: this.gcCount,
      gcTimeMs: this.gcTimeMs,
      cpuUserMs: cpu.user / 1000,
      cpuSystemMs: cpu.system / 1000,
      rocksdbDiskBytes: this.rocksdbDiskBytes,
      uptimeMs: Math.round(process.uptime() * 1000),
    };
    this.delay.reset();
    return out;
  }

  close(): void {
    this.delay.disable();
    this.gc.disconnect();
  }
}
