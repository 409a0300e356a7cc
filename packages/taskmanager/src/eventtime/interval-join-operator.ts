import type { Collector, OutputTag, ProcessJoinFunction, WindowSerializer } from './api.js';
import type { InternalTimerService } from './internal-timer-service.js';
import type { NamespacedKeyedState, NamespacedListState } from './namespaced-state.js';
import type { InternalTimer } from './timer-heap.js';
import type { WindowOutput } from './window-operator.js';

/** Which buffer a cleanup timer is for. */
export type JoinSide = 'left' | 'right';

/** Timer namespaces of the interval join: the side whose buffer the timer cleans. */
export const JOIN_SIDE_SERIALIZER: WindowSerializer<JoinSide> = {
  toKey: (side) => side,
  fromKey: (key) => {
    if (key !== 'left' && key !== 'right')
      throw new Error(`Corrupt interval join timer namespace '${String(key)}'`);
    return key;
  },
};

export const LEFT_BUFFER_STATE = 'interval-join-left';
export const RIGHT_BUFFER_STATE = 'interval-join-right';

export interface IntervalJoinOptions<L, R, OUT> {
  operatorName: string;
  /** right.ts - left.ts must lie in [lowerBound, upperBound] (ms) */
  lowerBound: number;
  upperBound: number;
  lowerBoundExclusive?: boolean;
  upperBoundExclusive?: boolean;
  fn: Pick<ProcessJoinFunction<L, R, OUT>, 'processElement'>;
  state: NamespacedKeyedState;
  timers: InternalTimerService<JoinSide>;
  output: WindowOutput<OUT>;
  leftLateDataOutputTag?: OutputTag<L>;
  rightLateDataOutputTag?: OutputTag<R>;
}

/**
 * `a.keyBy(k).intervalJoin(b.keyBy(k)).between(lower, upper)` (Flink's IntervalJoinOperator):
 * each side buffers its records per key under their timestamp; a new record joins with the
 * other side's records whose timestamps fall in its interval; a cleanup timer drops a
 * record once the watermark shows no partner can arrive. Records at or behind the watermark
 * are late: dropped and counted, or sent to the side's late output. A joined pair carries the
 * larger of the two timestamps.
 */
export class IntervalJoinOperator<L, R, OUT> {
  /** late records dropped because no side output was set */
  numLateRecordsDropped = 0;
  private readonly lower: number;
  private readonly upper: number;
  private readonly left: NamespacedListState<L>;
  private readonly right: NamespacedListState<R>;
  private readonly ctx: ProcessJoinFunction.Context & { leftTs: number; rightTs: number };
  private readonly collector: Collector<OUT> & { timestamp: number };

  constructor(private readonly opts: IntervalJoinOptions<L, R, OUT>) {
    const name = opts.operatorName;
    for (const [what, v] of [
      ['lower bound', opts.lowerBound],
      ['upper bound', opts.upperBound],
    ] as const) {
      if (typeof v !== 'number' || !Number.isFinite(v)) {
        throw new Error(
          `'${name}': the interval join's ${what} must be a finite number of milliseconds, got ${String(v)}`,
        );
      }
    }
    this.lower = opts.lowerBoundExclusive ? opts.lowerBound + 1 : opts.lowerBound;
    this.upper = opts.upperBoundExclusive ? opts.upperBound - 1 : opts.upperBound;
    if (this.lower > this.upper) {
      throw new Error(
        `'${name}': between(${opts.lowerBound}, ${opts.upperBound}) is empty${opts.lowerBoundExclusive || opts.upperBoundExclusive ? ' with exclusive bounds' : ''}; the lower bound must not be above the upper bound`,
      );
    }
    this.left = opts.state.getListState<L>(LEFT_BUFFER_STATE);
    this.right = opts.state.getListState<R>(RIGHT_BUFFER_STATE);
    const output = opts.output;
    this.collector = {
      timestamp: 0,
      collect(value: OUT) {
        output.collect(value, this.timestamp);
      },
    };
    this.ctx = {
      leftTs: 0,
      rightTs: 0,
      getLeftTimestamp() {
        return this.leftTs;
      },
      getRightTimestamp() {
        return this.rightTs;
      },
      getTimestamp() {
        return Math.max(this.leftTs, this.rightTs);
      },
      output: <X>(tag: OutputTag<X>, value: X) =>
        output.sideOutput(tag as OutputTag<unknown>, value, this.ctx.getTimestamp()),
    };
  }

  processElement1(value: L, timestamp: number | undefined, key: unknown): void {
    this.process(value, timestamp, key, true);
  }

  processElement2(value: R, timestamp: number | undefined, key: unknown): void {
    this.process(value, timestamp, key, false);
  }

  onEventTime(timer: InternalTimer<JoinSide>): void {
    // the timer was set at ts + upper (left) or ts - lower (right), or at ts when that is earlier
    if (timer.namespace === 'left') {
      this.left.clear(this.upper <= 0 ? timer.timestamp : timer.timestamp - this.upper);
    } else {
      this.right.clear(this.lower <= 0 ? timer.timestamp + this.lower : timer.timestamp);
    }
  }

  onProcessingTime(): void {}

  private process(value: unknown, timestamp: number | undefined, key: unknown, isLeft: boolean): void {
    const o = this.opts;
    if (timestamp === undefined) {
      throw new Error(
        `'${o.operatorName}' got a ${isLeft ? 'left' : 'right'} record without a timestamp; an interval join needs event time (assignTimestampsAndWatermarks on both inputs)`,
      );
    }
    o.state.setCurrentKey(key);
    // at or behind the watermark is late (as in the window operator): such a record may have
    // lost partners to cleanup already, so it is reported rather than joined partially
    if (timestamp <= o.timers.currentWatermark()) {
      const tag = isLeft ? o.leftLateDataOutputTag : o.rightLateDataOutputTag;
      if (tag) o.output.sideOutput(tag as OutputTag<unknown>, value, timestamp);
      else this.numLateRecordsDropped++;
      return;
    }
    const ours = (isLeft ? this.left : this.right) as NamespacedListState<unknown>;
    ours.add(timestamp, value);
    // the other side's partners lie in [ts + lo, ts + hi]
    const lo = isLeft ? this.lower : -this.upper;
    const hi = isLeft ? this.upper : -this.lower;
    const otherName = isLeft ? RIGHT_BUFFER_STATE : LEFT_BUFFER_STATE;
    const other = (isLeft ? this.right : this.left) as NamespacedListState<unknown>;
    const stamps = o.state.namespaces(otherName) as number[];
    // in timestamp order, so a key's output does not depend on buffer history
    stamps.sort((a, b) => a - b);
    for (const ts of stamps) {
      if (ts < timestamp + lo || ts > timestamp + hi) continue;
      for (const partner of other.get(ts) ?? []) {
        if (isLeft) this.emit(value as L, timestamp, partner as R, ts);
        else this.emit(partner as L, ts, value as R, timestamp);
      }
    }
    const cleanup = hi > 0 ? timestamp + hi : timestamp;
    o.timers.registerEventTimeTimer(isLeft ? 'left' : 'right', cleanup);
  }

  private emit(left: L, leftTs: number, right: R, rightTs: number): void {
    this.ctx.leftTs = leftTs;
    this.ctx.rightTs = rightTs;
    this.collector.timestamp = Math.max(leftTs, rightTs);
    this.opts.fn.processElement(left, right, this.ctx, this.collector);
  }
}
