/*
 * One file for the window operator's flow (records, timers, merging, contents, lateness): the
 * steps share the operator's dozen state handles and trigger context, and read as Flink's
 * WindowOperator does; merging is in MergingWindowSet and the trigger context in
 * window-trigger-context.ts.
 */
import type {
  AggregateFunction,
  Collector,
  Evictor,
  MergingWindowAssigner,
  OutputTag,
  ProcessWindowFunction,
  ReduceFunction,
  TimestampedValue,
  Trigger,
  TriggerResult,
  Window,
  WindowAssigner,
  WindowSerializer,
} from './api.js';
import type { InternalTimer } from './timer-heap.js';
import type {
  NamespaceKey,
  NamespacedKeyedState,
  NamespacedListState,
  NamespacedValueState,
} from './namespaced-state.js';
import { MergingWindowSet, type MergeFunction } from './merging-window-set.js';
import { NamespacedStateStore } from './namespaced-state-store.js';
import { WindowTriggerContext, type WindowTimerService } from './window-trigger-context.js';

/** Where the window operator's results and late records go, each with its timestamp. */
export interface WindowOutput<OUT> {
  collect(value: OUT, timestamp: number | undefined): void;
  sideOutput(tag: OutputTag<unknown>, value: unknown, timestamp: number | undefined): void;
}

export type { WindowTimerService } from './window-trigger-context.js';

export interface WindowOperatorOptions<IN, ACC, R, OUT, K, W extends Window> {
  operatorName: string;
  assigner: WindowAssigner<IN, W>;
  /** default: the assigner's */
  trigger?: Trigger<IN, W>;
  evictor?: Evictor<IN, W>;
  /** ms after a window's end during which late records still update it (event time only) */
  allowedLateness?: number;
  lateDataOutputTag?: OutputTag<IN>;
  /** incremental aggregation: at most one of reduce and aggregate */
  reduce?: ReduceFunction<IN>;
  aggregate?: AggregateFunction<IN, ACC, R>;
  /** evaluates a fired window; without it the (pre-aggregated) contents are emitted as they are */
  process?: ProcessWindowFunction<R, OUT, K, W>;
  state: NamespacedKeyedState;
  timers: WindowTimerService<W>;
  output: WindowOutput<OUT>;
}

const isFire = (r: TriggerResult): boolean => r === 'FIRE' || r === 'FIRE_AND_PURGE';
const isPurge = (r: TriggerResult): boolean => r === 'PURGE' || r === 'FIRE_AND_PURGE';

/** State names of the window operator inside the operator's keyed state. */
export const WINDOW_CONTENTS_STATE = 'window-contents';
export const MERGING_WINDOWS_STATE = 'merging-window-set';

/**
 * Keyed windows (Flink's WindowOperator and EvictingWindowOperator): assigns each record to
 * windows, keeps their contents per (key, window) in namespaced state (pre-aggregated with
 * reduce/aggregate, or all elements), asks the trigger when to fire, merges session windows,
 * applies allowed lateness, sends late records to a side output or counts them as dropped,
 * and clears a window's state with a cleanup timer at maxTimestamp + allowedLateness.
 *
 * The task calls processElement for each record (with its key), and routes the timer
 * service's firings to onEventTime / onProcessingTime.
 */
export class WindowOperator<IN, ACC, R, OUT, K, W extends Window> {
  readonly operatorName: string;
  /** late records dropped because no side output was set (the numLateRecordsDropped metric) */
  numLateRecordsDropped = 0;

  private readonly assigner: WindowAssigner<IN, W>;
  private readonly mergingAssigner: MergingWindowAssigner<IN, W> | undefined;
  private readonly trigger: Trigger<IN, W>;
  private readonly evictor: Evictor<IN, W> | undefined;
  private readonly allowedLateness: number;
  private readonly lateTag: OutputTag<IN> | undefined;
  private readonly serializer: WindowSerializer<W>;
  private readonly isEventTime: boolean;
  private readonly state: NamespacedKeyedState;
  private readonly timers: WindowTimerService<W>;
  private readonly output: WindowOutput<OUT>;
  private readonly reduceFn: ReduceFunction<IN> | undefined;
  private readonly aggregateFn: AggregateFunction<IN, ACC, R> | undefined;
  private readonly processFn: ProcessWindowFunction<R, OUT, K, W> | undefined;

  // contents: a value (reduce/aggregate) or a list (all elements; with timestamps when evicting)
  private readonly valueContents: NamespacedValueState<unknown> | undefined;
  private readonly listContents: NamespacedListState<unknown> | undefined;
  private readonly mergingState: NamespacedValueState<[NamespaceKey, NamespaceKey][]> | undefined;

  private readonly triggerStore: NamespacedStateStore;
  private readonly windowStore: NamespacedStateStore;
  private readonly globalStore: NamespacedStateStore;
  private readonly triggerContext: WindowTriggerContext<IN, W>;
  private readonly processContext: ProcessWindowFunction.Context<W> & { currentWindow: W | undefined };
  private readonly collector: Collector<OUT> & { timestamp: number };
  private readonly assignerContext: { getCurrentProcessingTime(): number };
  private readonly mergeFunction: MergeFunction<W>;

  constructor(opts: WindowOperatorOptions<IN, ACC, R, OUT, K, W>) {
    const name = opts.operatorName;
    this.operatorName = name;
    this.assigner = opts.assigner;
    this.serializer = opts.assigner.getWindowSerializer();
    this.isEventTime = opts.assigner.isEventTime();
    this.mergingAssigner =
      typeof (opts.assigner as Partial<MergingWindowAssigner<IN, W>>).mergeWindows === 'function'
        ? (opts.assigner as MergingWindowAssigner<IN, W>)
        : undefined;
    this.trigger = opts.trigger ?? opts.assigner.getDefaultTrigger();
    this.evictor = opts.evictor;
    this.allowedLateness = opts.allowedLateness ?? 0;
    this.lateTag = opts.lateDataOutputTag;
    this.state = opts.state;
    this.timers = opts.timers;
    this.output = opts.output;
    this.reduceFn = opts.reduce;
    this.aggregateFn = opts.aggregate;
    this.processFn = opts.process;

    if (typeof this.allowedLateness !== 'number' || !(this.allowedLateness >= 0)) {
      throw new Error(
        `'${name}': allowedLateness must be a number of milliseconds >= 0, got ${String(opts.allowedLateness)}`,
      );
    }
    if (this.reduceFn && this.aggregateFn)
      throw new Error(`'${name}': a window takes reduce() or aggregate(), not both`);
    if (this.mergingAssigner && !this.trigger.canMerge()) {
      throw new Error(
        `'${name}': the trigger ${this.trigger.toString()} cannot be used with the merging window assigner ${this.assigner.toString()} (its canMerge() is false)`,
      );
    }
    if (
      this.mergingAssigner &&
      this.aggregateFn &&
      !this.evictor &&
      typeof this.aggregateFn.merge !== 'function'
    ) {
      throw new Error(
        `'${name}': session windows (${this.assigner.toString()}) with aggregate() need AggregateFunction.merge(a, b) to merge accumulators`,
      );
    }

    if (this.evictor || (!this.reduceFn && !this.aggregateFn)) {
      this.listContents = opts.state.getListState(WINDOW_CONTENTS_STATE);
    } else {
      this.valueContents = opts.state.getValueState(WINDOW_CONTENTS_STATE);
    }
    if (this.mergingAssigner) this.mergingState = opts.state.getValueState(MERGING_WINDOWS_STATE);

    this.triggerStore = new NamespacedStateStore(opts.state, 'trigger:', name);
    this.windowStore = new NamespacedStateStore(opts.state, 'window:', name);
    this.globalStore = new NamespacedStateStore(opts.state, 'global:', name);
    this.triggerContext = new WindowTriggerContext<IN, W>(this.timers, this.triggerStore, this.serializer);
    this.assignerContext = { getCurrentProcessingTime: () => this.timers.currentProcessingTime() };

    const output = this.output;
    this.collector = {
      timestamp: 0,
      collect(value: OUT) {
        output.collect(value, this.timestamp);
      },
    };
    const self = this;
    this.processContext = {
      currentWindow: undefined,
      window() {
        return this.currentWindow!;
      },
      currentProcessingTime: () => self.timers.currentProcessingTime(),
      currentWatermark: () => self.timers.currentWatermark(),
      windowState: () => {
        if (self.mergingAssigner) {
          throw new Error(
            `'${name}': per-window state (windowState()) is not available with merging windows (${self.assigner.toString()}); use globalState() or the window contents`,
          );
        }
        return self.windowStore;
      },
      globalState: () => self.globalStore,
      output: <X>(tag: OutputTag<X>, value: X) =>
        self.output.sideOutput(
          tag as OutputTag<unknown>,
          value,
          self.processContext.currentWindow?.maxTimestamp(),
        ),
    };
    this.mergeFunction = (mergeResult, mergedWindows, stateWindowResult, mergedStateWindows) =>
      this.onMerge(mergeResult, mergedWindows, stateWindowResult, mergedStateWindows);
  }

  /** The state backend's current key is set to `key` here; records must come partitioned by key. */
  processElement(value: IN, timestamp: number | undefined, key: K): void {
    this.state.setCurrentKey(key);
    const windows = this.assigner.assignWindows(value, timestamp, this.assignerContext);
    let skipped = true;
    if (this.mergingAssigner) {
      const set = this.mergingWindowSet();
      for (const window of windows) {
        const actual = set.addWindow(window, this.mergeFunction);
        if (this.isWindowLate(actual)) {
          set.retireWindow(actual);
          continue;
        }
        skipped = false;
        const stateWindow = set.getStateWindow(actual);
        if (stateWindow === undefined) {
          throw new Error(
            `'${this.operatorName}': window ${String(actual)} has no state window after merging`,
          );
        }
        const stateKey = this.serializer.toKey(stateWindow);
        const actualKey = stateWindow === actual ? stateKey : this.serializer.toKey(actual);
        this.addElement(actual, actualKey, stateKey, value, timestamp, key);
      }
      set.persist();
    } else {
      for (const window of windows) {
        if (this.isWindowLate(window)) continue;
        skipped = false;
        const windowKey = this.serializer.toKey(window);
        this.addElement(window, windowKey, windowKey, value, timestamp, key);
      }
    }
    if (skipped && this.isElementLate(timestamp)) {
      if (this.lateTag) this.output.sideOutput(this.lateTag as OutputTag<unknown>, value, timestamp);
      else this.numLateRecordsDropped++;
    }
  }

  onEventTime(timer: InternalTimer<W>): void {
    this.onTimer(timer, true);
  }

  onProcessingTime(timer: InternalTimer<W>): void {
    this.onTimer(timer, false);
  }

  private onTimer(timer: InternalTimer<W>, eventTime: boolean): void {
    const window = timer.namespace;
    const key = timer.key as K;
    let set: MergingWindowSet<W> | undefined;
    let stateNs: NamespaceKey;
    if (this.mergingAssigner) {
      set = this.mergingWindowSet();
      const stateWindow = set.getStateWindow(window);
      // a timer of a window that merged into another: the merged window has its own timers
      if (stateWindow === undefined) return;
      stateNs = this.serializer.toKey(stateWindow);
    } else {
      stateNs = timer.namespaceKey;
    }
    if (this.hasContents(stateNs)) {
      const ctx = this.triggerContext.at(window, timer.namespaceKey);
      const result = eventTime
        ? this.trigger.onEventTime(timer.timestamp, window, ctx)
        : this.trigger.onProcessingTime(timer.timestamp, window, ctx);
      if (isFire(result)) this.emitWindowContents(window, stateNs, key);
      if (isPurge(result)) this.clearContents(stateNs);
    }
    if (eventTime === this.isEventTime && timer.timestamp === this.cleanupTime(window)) {
      this.clearAllState(window, stateNs, set);
    }
    set?.persist();
  }

  private addElement(
    window: W,
    windowKey: NamespaceKey,
    stateNs: NamespaceKey,
    value: IN,
    timestamp: number | undefined,
    key: K,
  ): void {
    this.addToContents(stateNs, value, timestamp);
    const result = this.trigger.onElement(
      value,
      timestamp,
      window,
      this.triggerContext.at(window, windowKey),
    );
    if (isFire(result) && this.hasContents(stateNs)) this.emitWindowContents(window, stateNs, key);
    if (isPurge(result)) this.clearContents(stateNs);
    this.registerCleanupTimer(window, windowKey);
  }

  private onMerge(mergeResult: W, mergedWindows: W[], stateWindowResult: W, mergedStateWindows: W[]): void {
    if (this.isEventTime && this.cleanupTime(mergeResult) <= this.timers.currentWatermark()) {
      throw new Error(
        `'${this.operatorName}': merging made the event-time window ${String(mergeResult)} end before the current watermark ${this.timers.currentWatermark()}`,
      );
    }
    if (!this.isEventTime && mergeResult.maxTimestamp() <= this.timers.currentProcessingTime()) {
      throw new Error(
        `'${this.operatorName}': merging made the processing-time window ${String(mergeResult)} end before the current time`,
      );
    }
    const ctx = this.triggerContext.merging(mergeResult, mergedWindows);
    this.trigger.onMerge(mergeResult, ctx);
    for (const m of mergedWindows) {
      this.trigger.clear(m, this.triggerContext.at(m));
      this.deleteCleanupTimer(m);
    }
    this.mergeContents(
      this.serializer.toKey(stateWindowResult),
      mergedStateWindows.map((w) => this.serializer.toKey(w)),
    );
  }

  private mergingWindowSet(): MergingWindowSet<W> {
    return new MergingWindowSet<W>(
      this.mergingAssigner as unknown as MergingWindowAssigner<unknown, W>,
      this.serializer,
      this.mergingState!,
      0,
    );
  }

  // ---- contents ----

  private addToContents(ns: NamespaceKey, value: IN, timestamp: number | undefined): void {
    if (this.listContents) {
      if (this.evictor) {
        const tv: TimestampedValue<IN> = { value, timestamp };
        this.listContents.add(ns, tv);
      } else {
        this.listContents.add(ns, value);
      }
      return;
    }
    const st = this.valueContents!;
    const cur = st.get(ns);
    if (this.reduceFn) {
      st.update(ns, cur === undefined ? value : this.reduceFn(cur as IN, value));
    } else {
      const agg = this.aggregateFn!;
      st.update(ns, agg.add(value, cur === undefined ? agg.createAccumulator() : (cur as ACC)));
    }
  }

  private hasContents(ns: NamespaceKey): boolean {
    return this.listContents
      ? this.listContents.get(ns) !== undefined
      : this.valueContents!.get(ns) !== undefined;
  }

  private clearContents(ns: NamespaceKey): void {
    if (this.listContents) this.listContents.clear(ns);
    else this.valueContents!.clear(ns);
  }

  private mergeContents(target: NamespaceKey, sources: NamespaceKey[]): void {
    if (sources.length === 0) return;
    if (this.listContents) {
      const st = this.listContents;
      for (const s of sources) {
        const vs = st.get(s);
        if (!vs) continue;
        const copy = [...vs];
        st.clear(s);
        for (const v of copy) st.add(target, v);
      }
      return;
    }
    const st = this.valueContents!;
    let acc = st.get(target);
    for (const s of sources) {
      const v = st.get(s);
      if (v === undefined) continue;
      st.clear(s);
      if (acc === undefined) acc = v;
      else if (this.reduceFn) acc = this.reduceFn(acc as IN, v as IN);
      else acc = this.aggregateFn!.merge!(acc as ACC, v as ACC);
    }
    if (acc !== undefined) st.update(target, acc);
  }

  private emitWindowContents(window: W, ns: NamespaceKey, key: K): void {
    let input: Iterable<unknown>;
    let evicting: TimestampedValue<IN>[] | undefined;
    const ctx = this.triggerContext;
    if (this.evictor) {
      evicting = [...(this.listContents!.get(ns) as TimestampedValue<IN>[])];
      this.evictor.evictBefore(evicting, evicting.length, window, ctx);
      const values = evicting.map((e) => e.value);
      input = values;
      if (this.reduceFn) {
        input = values.length === 0 ? [] : [values.reduce((a, b) => this.reduceFn!(a, b))];
      } else if (this.aggregateFn) {
        const agg = this.aggregateFn;
        let acc = agg.createAccumulator();
        for (const v of values) acc = agg.add(v, acc);
        input = [agg.getResult(acc)];
      }
    } else if (this.listContents) {
      input = this.listContents.get(ns)!;
    } else if (this.reduceFn) {
      input = [this.valueContents!.get(ns)];
    } else {
      input = [this.aggregateFn!.getResult(this.valueContents!.get(ns) as ACC)];
    }

    this.collector.timestamp = window.maxTimestamp();
    if (this.processFn) {
      this.processContext.currentWindow = window;
      this.windowStore.namespace = this.serializer.toKey(window);
      this.processFn.process(key, this.processContext, input as Iterable<R>, this.collector);
    } else {
      for (const v of input) this.collector.collect(v as OUT);
    }

    if (this.evictor && evicting) {
      this.evictor.evictAfter(evicting, evicting.length, window, ctx);
      this.listContents!.update(ns, evicting);
    }
  }

  // ---- lateness and cleanup ----

  private cleanupTime(window: W): number {
    return this.isEventTime ? window.maxTimestamp() + this.allowedLateness : window.maxTimestamp();
  }

  private isWindowLate(window: W): boolean {
    return this.isEventTime && this.cleanupTime(window) <= this.timers.currentWatermark();
  }

  private isElementLate(timestamp: number | undefined): boolean {
    return (
      this.isEventTime &&
      timestamp !== undefined &&
      timestamp + this.allowedLateness <= this.timers.currentWatermark()
    );
  }

  private registerCleanupTimer(window: W, windowKey: NamespaceKey): void {
    const t = this.cleanupTime(window);
    if (t === Infinity) return;
    if (this.isEventTime) this.timers.registerEventTimeTimer(window, t, windowKey);
    else this.timers.registerProcessingTimeTimer(window, t, windowKey);
  }

  private deleteCleanupTimer(window: W): void {
    const t = this.cleanupTime(window);
    if (t === Infinity) return;
    if (this.isEventTime) this.timers.deleteEventTimeTimer(window, t);
    else this.timers.deleteProcessingTimeTimer(window, t);
  }

  private clearAllState(window: W, stateNs: NamespaceKey, set: MergingWindowSet<W> | undefined): void {
    this.clearContents(stateNs);
    this.trigger.clear(window, this.triggerContext.at(window));
    if (this.processFn) {
      this.processContext.currentWindow = window;
      this.windowStore.namespace = this.serializer.toKey(window);
      this.processFn.clear(this.processContext);
    }
    set?.retireWindow(window);
  }
}
