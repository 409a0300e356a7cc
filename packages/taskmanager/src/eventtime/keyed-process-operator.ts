import type {
  Collector,
  KeyedProcessFunction,
  OnTimerContext,
  OutputTag,
  TimeDomain,
  TimerCallback,
  TimerService,
} from './api.js';
import type { InternalTimerService, KeyContext } from './internal-timer-service.js';
import type { InternalTimer } from './timer-heap.js';
import type { WindowOutput } from './window-operator.js';

/** What the operator calls: a KeyedProcessFunction's methods (structural, so any copy of the API class fits). */
export type KeyedProcessFunctionLike<K, IN, OUT> = Pick<KeyedProcessFunction<K, IN, OUT>, 'processElement'> &
  Partial<TimerCallback<K, OUT>>;

/** Timers of a KeyedProcessFunction have no namespace of their own: the key alone. */
const VOID = 0;

/**
 * A KeyedProcessFunction with timers and side outputs (Flink's KeyedProcessOperator): the
 * context gives the record's timestamp, the timer service of the current key and
 * `output(tag, v)`; `onTimer` runs with the timer's key current. Records emitted carry the
 * input record's timestamp, an event-time timer's timestamp, or none for processing-time
 * timers, as in Flink. One context object serves every call.
 */
export class KeyedProcessOperator<K, IN, OUT> {
  private readonly fn: KeyedProcessFunctionLike<K, IN, OUT>;
  private readonly ctx: OnTimerContext<K> & {
    currentTimestamp: number | undefined;
    domain: TimeDomain | undefined;
  };
  private readonly collector: Collector<OUT> & { timestamp: number | undefined };

  constructor(
    readonly operatorName: string,
    fn: KeyedProcessFunctionLike<K, IN, OUT>,
    private readonly keyContext: KeyContext,
    private readonly timers: InternalTimerService<undefined>,
    output: WindowOutput<OUT>,
  ) {
    this.fn = fn;
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
      registerEventTimeTimer: (time) => t.registerEventTimeTimer(undefined, time, VOID),
      registerProcessingTimeTimer: (time) => t.registerProcessingTimeTimer(undefined, time, VOID),
      deleteEventTimeTimer: (time) => t.deleteEventTimeTimer(undefined, time, VOID),
      deleteProcessingTimeTimer: (time) => t.deleteProcessingTimeTimer(undefined, time, VOID),
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
      currentProcessingTime: () => t.currentProcessingTime(),
      timerService: () => timerService,
      getCurrentKey: () => keyContext.getCurrentKey() as K,
      timeDomain() {
        if (this.domain === undefined)
          throw new Error(`'${name}': timeDomain() is only available in onTimer`);
        return this.domain;
      },
    };
  }

  processElement(value: IN, timestamp: number | undefined, key: K): void {
    this.keyContext.setCurrentKey(key);
    this.ctx.currentTimestamp = timestamp;
    this.ctx.domain = undefined;
    this.collector.timestamp = timestamp;
    this.fn.processElement(value, this.ctx, this.collector);
  }

  onEventTime(timer: InternalTimer<undefined>): void {
    this.fire(timer, 'EVENT_TIME' as TimeDomain, timer.timestamp);
  }

  onProcessingTime(timer: InternalTimer<undefined>): void {
    this.fire(timer, 'PROCESSING_TIME' as TimeDomain, undefined);
  }

  private fire(
    timer: InternalTimer<undefined>,
    domain: TimeDomain,
    outputTimestamp: number | undefined,
  ): void {
    const onTimer = this.fn.onTimer;
    if (typeof onTimer !== 'function') {
      throw new Error(
        `'${this.operatorName}' registered a timer but its ${this.fn.constructor.name} has no onTimer(timestamp, ctx, out) method`,
      );
    }
    this.ctx.currentTimestamp = timer.timestamp;
    this.ctx.domain = domain;
    this.collector.timestamp = outputTimestamp;
    onTimer.call(this.fn, timer.timestamp, this.ctx, this.collector);
    this.ctx.domain = undefined;
  }
}
