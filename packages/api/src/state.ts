/** Keyed state, scoped to the key of the record being processed. Access is synchronous. */
export interface State {
  clear(): void;
}

export interface ValueState<T> extends State {
  value(): T | undefined;
  update(value: T): void;
}

export interface ListState<T> extends State {
  get(): Iterable<T>;
  add(value: T): void;
  addAll(values: T[]): void;
  update(values: T[]): void;
}

export interface MapState<UK, UV> extends State {
  get(key: UK): UV | undefined;
  put(key: UK, value: UV): void;
  putAll(entries: Iterable<[UK, UV]>): void;
  remove(key: UK): void;
  contains(key: UK): boolean;
  entries(): Iterable<[UK, UV]>;
  keys(): Iterable<UK>;
  values(): Iterable<UV>;
  isEmpty(): boolean;
}

/** Appending state: `add` folds a value into the state, `get` returns the result. */
export interface AppendingState<IN, OUT> extends State {
  get(): OUT | undefined;
  add(value: IN): void;
}

export type ReducingState<T> = AppendingState<T, T>;
export type AggregatingState<IN, OUT> = AppendingState<IN, OUT>;

export interface AggregateFunction<IN, ACC, OUT> {
  createAccumulator(): ACC;
  add(value: IN, accumulator: ACC): ACC;
  getResult(accumulator: ACC): OUT;
  merge?(a: ACC, b: ACC): ACC;
}

export abstract class StateDescriptor<S extends State> {
  /** phantom field so descriptors of different state types do not unify */
  declare readonly __state?: S;
  abstract readonly kind: 'value' | 'list' | 'map' | 'reducing' | 'aggregating';
  constructor(readonly name: string) {
    if (!name) throw new Error('A state descriptor needs a non-empty name');
  }
}

export class ValueStateDescriptor<T> extends StateDescriptor<ValueState<T>> {
  readonly kind = 'value' as const;
  constructor(
    name: string,
    readonly defaultValue?: T,
  ) {
    super(name);
  }
}

export class ListStateDescriptor<T> extends StateDescriptor<ListState<T>> {
  readonly kind = 'list' as const;
}

export class MapStateDescriptor<UK, UV> extends StateDescriptor<MapState<UK, UV>> {
  readonly kind = 'map' as const;
  declare readonly __types?: [UK, UV];
}

export class ReducingStateDescriptor<T> extends StateDescriptor<ReducingState<T>> {
  readonly kind = 'reducing' as const;
  constructor(
    name: string,
    readonly reduceFunction: (a: T, b: T) => T,
  ) {
    super(name);
  }
}

export class AggregatingStateDescriptor<IN, ACC, OUT> extends StateDescriptor<AggregatingState<IN, OUT>> {
  readonly kind = 'aggregating' as const;
  constructor(
    name: string,
    readonly aggregateFunction: AggregateFunction<IN, ACC, OUT>,
  ) {
    super(name);
  }
}
