import type { Collector, KeyedCoProcessFunction, OutputTag, TimeDomain, TimerService } from './api.js';
import type { InternalTimerService, KeyContext } from './internal-timer-service.js';
import type { InternalTimer } from './timer-heap.js';
import type { WindowOutput } from './window-operator.js';

/** What the operator calls (structural, so any copy of the API class fits). */
export type KeyedCoProcessFunctionLike<K, IN1, IN2, OUT> = Pick<
  KeyedCoProcessFunction<K, IN1, IN2, OUT>,
  'processElement1' | 'processElement2' | 'onTimer'
>;

/**
 * Two keyed inputs connected by equal keys (Flink's KeyedCoProcessOperator): like
 * KeyedProcessOperator, with one element method per input sharing keyed state and timers.
 * The task feeds it through two valves and a TwoInputWatermarkCombiner.
 */
export class KeyedCoProcessOperator<K, IN1, IN2, OUT> {
  private readonly ctx: KeyedCoProcessFunction.OnTimerContext<K> & {
    currentTimestamp: number | undefined;
    domain: TimeDomain | undefined;
  };
  private readonly collector: Collector<OUT> & { timestamp: number | undefined };

  constructor(
    readonly operatorName: string,
    private readonly fn: KeyedCoProcessFunctionLike<K, IN1, IN2, OUT>,
    private readonly keyContext: KeyContext,
    timers: InternalTimerService<undefined>,
    output: WindowOutput<OUT>,
  ) {
    this.collector = {
      timestamp: undefined,
      collect(value: OUT) {
        output.collect(value, this.timestamp);
      },
    };
    const t = timers;
    const timerService: TimerService = {
      currentProcessingTime: () => t.currentProcessingTime(),
      currentWatermark: () => t.currentWatermark(),
      registerEventTimeTimer: (time) => t.registerEventTimeTimer(undefined, time, 0),
      registerProcessingTimeTimer: (time) => t.registerProcessingTimeTimer(undefined, time, 0),
      deleteEventTimeTimer: (time) => t.deleteEventTimeTimer(undefined, time, 0),
      deleteProcessingTimeTimer: (time) => t.deleteProcessingTimeTimer(undefined, time, 0),
    };
    const name = operatorName;
    this.ctx = {
      currentTimestamp: undefined,
      domain: undefined,
      timestamp() {
        return this.currentTimestamp;
      },
      output: <X>(tag: OutputTag<X>, value: X) =>
        output.sideOutput(tag as OutputTag<unknown>, value, this.ctx.currentTimestamp),
      timerService: () => timerService,
      getCurrentKey: () => keyContext.getCurrentKey() as K,
      timeDomain() {
        if (this.domain === undefined)
          throw new Error(`'${name}': timeDomain() is only available in onTimer`);
        return this.domain;
      },
    };
  }

  processElement1(value: IN1, timestamp: number | undefined, key: K): void {
    this.enter(timestamp, key);
    this.fn.processElement1(value, this.ctx, this.collector);
  }

  processElement2(value: IN2, timestamp: number | undefined, key: K): void {
    this.enter(timestamp, key);
    this.fn.processElement2(value, this.ctx, this.collector);
  }

  onEventTime(timer: InternalTimer<undefined>): void {
    this.fire(timer, 'EVENT_TIME' as TimeDomain, timer.timestamp);
  }

  onProcessingTime(timer: InternalTimer<undefined>): void {
    this.fire(timer, 'PROCESSING_TIME' as TimeDomain, undefined);
  }

  private enter(timestamp: number | undefined, key: K): void {
    this.keyContext.setCurrentKey(key);
    this.ctx.currentTimestamp = timestamp;
    this.ctx.domain = undefined;
    this.collector.timestamp = timestamp;
  }

  private fire(
    timer: InternalTimer<undefined>,
    domain: TimeDomain,
    outputTimestamp: number | undefined,
  ): void {
    if (typeof this.fn.onTimer !== 'function') {
      throw new Error(
        `'${this.operatorName}' registered a timer but its ${this.fn.constructor.name} has no onTimer(timestamp, ctx, out) method`,
      );
    }
    this.ctx.currentTimestamp = timer.timestamp;
    this.ctx.domain = domain;
    this.collector.timestamp = outputTimestamp;
    this.fn.onTimer(timer.timestamp, this.ctx, this.collector);
    this.ctx.domain = undefined;
  }
}
