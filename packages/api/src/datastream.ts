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
import type { OperatorKind, Partitioner, Transformation } from './transformation.js';
import type { StreamExecutionEnvironment } from './environment.js';

/** A stream of records of type T; every method adds a node to the environment's graph. */
export class DataStream<T> {
  constructor(
    protected readonly env: StreamExecutionEnvironment,
    /** @internal */ readonly transformation: Transformation,
  ) {}

  getExecutionEnvironment(): StreamExecutionEnvironment {
    return this.env;
  }

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
    return this.addOperator('process', 'Process', fn);
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

  broadcast(): DataStream<T> {
    return new DataStream<T>(this.env, this.partition({ type: 'broadcast' }));
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
