import type {
  Collector,
  FilterLike,
  FlatMapLike,
  KeySelector,
  KeyedProcessFunction,
  MapLike,
  ProcessFunction,
  ReduceFunction,
} from './functions.js';
import type { Sink } from './sink.js';
import { PrintSink } from './sinks/print-sink.js';
import { CollectSink } from './sinks/collect-sink.js';
import type { OperatorKind, Partitioner, Transformation, WindowSpec } from './transformation.js';
import type { StreamExecutionEnvironment } from './environment.js';
import { WatermarkStrategy } from './eventtime/watermark.js';
import { OutputTag } from './eventtime/output-tag.js';
import { GlobalWindows, type WindowAssigner } from './windowing/assigners.js';
import { CountTrigger, PurgingTrigger } from './windowing/triggers.js';
import { CountEvictor } from './windowing/evictors.js';
import type { GlobalWindow, Window } from './windowing/windows.js';
import { WindowedStream } from './windowing/windowed-stream.js';
import type { MapStateDescriptor } from './state.js';
import {
  BroadcastConnectedStream,
  BroadcastStream,
  ConnectedStreams,
  CoGroupedStreams,
  IntervalJoin,
  JoinedStreams,
  type OperatorWrapper,
} from './connected-streams.js';

/** The key of windowAll(): one key, so every record meets in one subtask. */
const ALL_KEY = (): number => 0;

/** A stream of records of type T; every method adds a node to the environment's graph. */
export class DataStream<T> {
  constructor(
    protected readonly env: StreamExecutionEnvironment,
    /** @internal */ readonly transformation: Transformation,
  ) {}

  getExecutionEnvironment(): StreamExecutionEnvironment {
    return this.env;
  }

  /** @internal */
  protected readonly wrapOperator: OperatorWrapper = (t) =>
    new SingleOutputStreamOperator<unknown>(this.env, t);

  protected addOperator<R>(
    kind: OperatorKind,
    name: string,
    fn: unknown,
    extra: Partial<Transformation> = {},
  ): SingleOutputStreamOperator<R> {
    const t = this.env.addTransformation({ kind, name, inputs: [this.transformation], fn, ...extra });
    return new SingleOutputStreamOperator<R>(this.env, t);
  }

  map<R>(fn: MapLike<T, R>): SingleOutputStreamOperator<R> {
    return this.addOperator('map', 'Map', fn);
  }

  flatMap<R>(fn: FlatMapLike<T, R>): SingleOutputStreamOperator<R> {
    return this.addOperator('flatMap', 'Flat Map', fn);
  }

  filter(fn: FilterLike<T>): SingleOutputStreamOperator<T> {
    return this.addOperator('filter', 'Filter', fn);
  }

  process<R>(fn: ProcessFunction<T, R>): SingleOutputStreamOperator<R> {
    if (typeof (fn as { onTimer?: unknown })?.onTimer === 'function') {
      throw new Error(
        `process() on a non-keyed stream got a function with onTimer (${fn.constructor.name}); timers need a keyed stream: keyBy(...).process(...)`,
      );
    }
    return this.addOperator('process', 'Process', fn);
  }

  /**
   * Gives the records timestamps and makes watermarks (Flink's assignTimestampsAndWatermarks):
   * upstream watermarks are dropped (except the final one of a bounded input), this operator
   * emits its own every `pipeline.auto-watermark-interval`.
   */
  assignTimestampsAndWatermarks(strategy: WatermarkStrategy<T>): SingleOutputStreamOperator<T> {
    if (!(strategy instanceof WatermarkStrategy)) {
      throw new Error(
        'assignTimestampsAndWatermarks() needs a WatermarkStrategy, e.g. WatermarkStrategy.forBoundedOutOfOrderness(5000).withTimestampAssigner((e) => e.ts)',
      );
    }
    return this.addOperator('timestampsAndWatermarks', 'Timestamps/Watermarks', undefined, {
      watermarkStrategy: strategy as WatermarkStrategy<unknown>,
    });
  }

  /** Windows over the whole stream (one subtask), as Flink's windowAll. */
  windowAll<W extends Window>(assigner: WindowAssigner<T, W>): WindowedStream<T, number, W> {
    const keyed = this.keyBy(ALL_KEY);
    return new WindowedStream<T, number, W>(
      {
        stream: keyed,
        keySelector: ALL_KEY,
        all: true,
        addWindow: <R>(spec: WindowSpec, name: string, keySelector: KeySelector<unknown, unknown>) =>
          keyed.addWindowNode<R>(spec, name, keySelector, 1),
      },
      assigner,
    );
  }

  /** Windows need keys: on a non-keyed stream this fails when the job is planned. */
  window<W extends Window>(assigner: WindowAssigner<T, W>): WindowedStream<T, unknown, W> {
    throw new Error(
      `window(${String(assigner)}) needs a keyed stream: call keyBy(...) first, or windowAll(...) for one window over the whole stream`,
    );
  }

  /** Runtime check for callers without types: interval joins need keys on both sides. */
  intervalJoin(_other: unknown): never {
    throw new Error(
      'intervalJoin() needs a keyed stream on both sides: a.keyBy(k).intervalJoin(b.keyBy(k)).between(lower, upper)',
    );
  }

  keyBy<K>(keySelector: KeySelector<T, K>): KeyedStream<T, K> {
    if (typeof keySelector !== 'function')
      throw new Error('keyBy() needs a key selector function, e.g. keyBy((t) => t[0])');
    const t = this.partition({ type: 'hash', keySelector: keySelector as KeySelector<unknown, unknown> });
    return new KeyedStream<T, K>(this.env, t, keySelector);
  }

  rebalance(): DataStream<T> {
    return new DataStream<T>(this.env, this.partition({ type: 'rebalance' }));
  }

  /**
   * Without arguments: every record goes to every subtask of the next operator. With
   * MapStateDescriptors: a BroadcastStream whose operator (`x.connect(b).process(...)`) keeps
   * those broadcast states.
   */
  broadcast(): DataStream<T>;
  broadcast(...descriptors: MapStateDescriptor<any, any>[]): BroadcastStream<T>;
  broadcast(...descriptors: MapStateDescriptor<unknown, unknown>[]): DataStream<T> | BroadcastStream<T> {
    if (descriptors.length > 0) return new BroadcastStream<T>(this, descriptors);
    return new DataStream<T>(this.env, this.partition({ type: 'broadcast' }));
  }

  /**
   * One operator over this stream and `other` (Flink's connect): with a DataStream, a
   * ConnectedStreams (`map`, `flatMap`, `process`, `keyBy`); with a BroadcastStream, a
   * BroadcastConnectedStream (`process` with broadcast state).
   */
  connect<T2>(other: BroadcastStream<T2>): BroadcastConnectedStream<T, T2>;
  connect<T2>(other: DataStream<T2>): ConnectedStreams<T, T2>;
  connect<T2>(
    other: DataStream<T2> | BroadcastStream<T2>,
  ): ConnectedStreams<T, T2> | BroadcastConnectedStream<T, T2> {
    if (other instanceof BroadcastStream) {
      if (other.stream.getExecutionEnvironment() !== this.env)
        throw new Error('connect() needs streams of the same execution environment');
      return new BroadcastConnectedStream<T, T2>(this.env, this, other, this.wrapOperator);
    }
    if (!(other instanceof DataStream)) throw new Error('connect() needs a DataStream or a BroadcastStream');
    if (other.env !== this.env) throw new Error('connect() needs streams of the same execution environment');
    return new ConnectedStreams<T, T2>(this.env, this, other, this.wrapOperator);
  }

  /** A window join: `a.join(b).where(ka).equalTo(kb).window(assigner).apply((l, r) => ...)`. */
  join<T2>(other: DataStream<T2>): JoinedStreams<T, T2> {
    if (!(other instanceof DataStream) || other.env !== this.env)
      throw new Error('join() needs a DataStream of the same execution environment');
    return new JoinedStreams<T, T2>(this, other);
  }

  /** A window coGroup: `a.coGroup(b).where(ka).equalTo(kb).window(assigner).apply((ls, rs, out) => ...)`. */
  coGroup<T2>(other: DataStream<T2>): CoGroupedStreams<T, T2> {
    if (!(other instanceof DataStream) || other.env !== this.env)
      throw new Error('coGroup() needs a DataStream of the same execution environment');
    return new CoGroupedStreams<T, T2>(this, other);
  }

  forward(): DataStream<T> {
    return new DataStream<T>(this.env, this.partition({ type: 'forward' }));
  }

  union(...others: DataStream<T>[]): DataStream<T> {
    for (const o of others) {
      if (o.env !== this.env) throw new Error('union() needs streams of the same execution environment');
    }
    const t = this.env.addTransformation({
      kind: 'union',
      name: 'Union',
      inputs: [this.transformation, ...others.map((o) => o.transformation)],
    });
    return new DataStream<T>(this.env, t);
  }

  sinkTo(sink: Sink<T>): DataStreamSink<T> {
    if (!sink || typeof (sink as Sink<T>).createWriter !== 'function') {
      throw new Error('sinkTo() needs a Sink (an object with createWriter), e.g. new FileSink({ path })');
    }
    const t = this.env.addTransformation({
      kind: 'sink',
      name: `Sink: ${sink.constructor.name}`,
      inputs: [this.transformation],
      sink: sink as Sink<unknown>,
    });
    this.env.registerSink(t);
    return new DataStreamSink<T>(t);
  }

  /** Sends every record back to `weir run`, which prints them as JSON lines at the end. */
  collect(): DataStreamSink<T> {
    return this.sinkTo(new CollectSink<T>()).name('Collect');
  }

  /** Prints every record to the TaskManager's stdout, prefixed with the subtask index. */
  print(prefix?: string): DataStreamSink<T> {
    const s = this.sinkTo(new PrintSink<T>(prefix));
    s.name('Print to Std. Out');
    return s;
  }

  private partition(partitioner: Partitioner): Transformation {
    return this.env.addTransformation({
      kind: 'partition',
      name: partitioner.type,
      inputs: [this.transformation],
      partitioner,
    });
  }
}

/** A stream produced by an operator: its parallelism, uid and name can be set. */
export class SingleOutputStreamOperator<T> extends DataStream<T> {
  /** The records this operator sent to `tag` (ctx.output(tag, v), late window data). */
  getSideOutput<X>(tag: OutputTag<X>): DataStream<X> {
    if (!(tag instanceof OutputTag))
      throw new Error('getSideOutput() needs an OutputTag, e.g. new OutputTag<string>("late")');
    const t = this.env.addTransformation({
      kind: 'sideOutput',
      name: `Side output ${tag.id}`,
      inputs: [this.transformation],
      outputTag: tag as OutputTag<unknown>,
    });
    return new DataStream<X>(this.env, t);
  }

  setParallelism(parallelism: number): this {
    if (!Number.isInteger(parallelism) || parallelism < 1) {
      throw new Error(`Parallelism must be a positive integer, got ${parallelism}`);
    }
    if (
      this.transformation.kind === 'source' &&
      this.transformation.parallelismCap !== undefined &&
      parallelism > this.transformation.parallelismCap
    ) {
      throw new Error(
        `The source '${this.transformation.name}' cannot run with parallelism ${parallelism} (at most ${this.transformation.parallelismCap})`,
      );
    }
    this.transformation.parallelism = parallelism;
    return this;
  }

  /** A stable operator id, so state finds its operator again after the job changes. */
  uid(uid: string): this {
    if (!/^[A-Za-z0-9_.-]+$/.test(uid))
      throw new Error(`uid '${uid}' may only contain letters, digits, '_', '.' and '-'`);
    this.transformation.uid = uid;
    return this;
  }

  name(name: string): this {
    this.transformation.name = name;
    return this;
  }
}

export class DataStreamSink<T> {
  declare readonly __type?: T;
  constructor(/** @internal */ readonly transformation: Transformation) {}

  setParallelism(parallelism: number): this {
    if (!Number.isInteger(parallelism) || parallelism < 1) {
      throw new Error(`Parallelism must be a positive integer, got ${parallelism}`);
    }
    this.transformation.parallelism = parallelism;
    return this;
  }

  uid(uid: string): this {
    this.transformation.uid = uid;
    return this;
  }

  name(name: string): this {
    this.transformation.name = name;
    return this;
  }
}

type FieldRef<T> = T extends readonly unknown[] ? number : keyof T & string;

function fieldAggregation<T>(
  field: string | number,
  pick: (a: number, b: number) => number,
): ReduceFunction<T> {
  return (acc: T, v: T): T => {
    const a = (acc as Record<string | number, unknown>)[field];
    const b = (v as Record<string | number, unknown>)[field];
    if (typeof a !== 'number' || typeof b !== 'number') {
      throw new Error(`Aggregation field ${String(field)} is not a number in ${JSON.stringify(v)}`);
    }
    const out = (Array.isArray(acc) ? [...acc] : { ...(acc as object) }) as Record<string | number, unknown>;
    out[field] = pick(a, b);
    return out as T;
  };
}

/** A stream partitioned by key: operators on it see keyed state scoped to the record's key. */
export class KeyedStream<T, K> extends DataStream<T> {
  constructor(
    env: StreamExecutionEnvironment,
    transformation: Transformation,
    readonly keySelector: KeySelector<T, K>,
  ) {
    super(env, transformation);
  }

  private keyed<R>(kind: OperatorKind, name: string, fn: unknown): SingleOutputStreamOperator<R> {
    return this.addOperator<R>(kind, name, fn, {
      keySelector: this.keySelector as KeySelector<unknown, unknown>,
    });
  }

  override process<R>(
    fn: KeyedProcessFunction<K, T, R> | ProcessFunction<T, R>,
  ): SingleOutputStreamOperator<R> {
    return this.keyed('keyedProcess', 'KeyedProcess', fn);
  }

  override map<R>(fn: MapLike<T, R>): SingleOutputStreamOperator<R> {
    return this.keyed('map', 'Map', fn);
  }

  override flatMap<R>(fn: FlatMapLike<T, R>): SingleOutputStreamOperator<R> {
    return this.keyed('flatMap', 'Flat Map', fn);
  }

  override filter(fn: FilterLike<T>): SingleOutputStreamOperator<T> {
    return this.keyed('filter', 'Filter', fn);
  }

  /** Cuts the stream into windows per key (Flink's KeyedStream.window). */
  override window<W extends Window>(assigner: WindowAssigner<T, W>): WindowedStream<T, K, W> {
    return new WindowedStream<T, K, W>(this.windowInput(), assigner);
  }

  /** Windows of `size` records per key; with `slide`, one every `slide` records over the last `size`. */
  countWindow(size: number, slide?: number): WindowedStream<T, K, GlobalWindow> {
    if (!Number.isInteger(size) || size < 1)
      throw new Error(`countWindow(size) needs an integer >= 1, got ${String(size)}`);
    const w = new WindowedStream<T, K, GlobalWindow>(this.windowInput(), GlobalWindows.create());
    if (slide === undefined) return w.trigger(PurgingTrigger.of(CountTrigger.of(size)));
    if (!Number.isInteger(slide) || slide < 1)
      throw new Error(`countWindow(size, slide) needs an integer slide >= 1, got ${String(slide)}`);
    return w.evictor(CountEvictor.of(size)).trigger(CountTrigger.of(slide));
  }

  private windowInput(): ConstructorParameters<typeof WindowedStream<T, K, Window>>[0] {
    return {
      stream: this,
      keySelector: this.keySelector as KeySelector<unknown, unknown>,
      all: false,
      addWindow: <R>(spec: WindowSpec, name: string, keySelector: KeySelector<unknown, unknown>) =>
        this.addWindowNode<R>(spec, name, keySelector),
    };
  }

  /** @internal */
  addWindowNode<R>(
    spec: WindowSpec,
    name: string,
    keySelector: KeySelector<unknown, unknown>,
    parallelism?: number,
  ): SingleOutputStreamOperator<R> {
    const op = this.addOperator<R>('window', name, spec.process, { keySelector, window: spec });
    if (parallelism !== undefined) {
      op.setParallelism(parallelism);
      op.transformation.parallelismCap = parallelism;
    }
    return op;
  }

  /** Joins with `other` on equal keys where the timestamps are close: `.between(lower, upper).process(fn)`. */
  // @ts-expect-error DataStream.intervalJoin only throws: interval joins are for keyed streams
  override intervalJoin<T2>(other: KeyedStream<T2, K>): IntervalJoin<T, T2, K> {
    if (!(other instanceof KeyedStream))
      throw new Error(
        'intervalJoin() needs a keyed stream on both sides: a.keyBy(k).intervalJoin(b.keyBy(k))',
      );
    return new IntervalJoin<T, T2, K>(this, other, this.wrapOperator);
  }

  /** Rolling reduce: emits the new aggregate of the record's key for every record. */
  reduce(fn: ReduceFunction<T>): SingleOutputStreamOperator<T> {
    return this.keyed('reduce', 'Keyed Reduce', fn);
  }

  /** Rolling sum of a tuple index or object field; the other fields come from the first record. */
  sum(field: FieldRef<T>): SingleOutputStreamOperator<T> {
    return this.keyed(
      'reduce',
      'Keyed Aggregation (sum)',
      fieldAggregation<T>(field, (a, b) => a + b),
    );
  }

  min(field: FieldRef<T>): SingleOutputStreamOperator<T> {
    return this.keyed('reduce', 'Keyed Aggregation (min)', fieldAggregation<T>(field, Math.min));
  }

  max(field: FieldRef<T>): SingleOutputStreamOperator<T> {
    return this.keyed('reduce', 'Keyed Aggregation (max)', fieldAggregation<T>(field, Math.max));
  }
}

export type { Collector };
