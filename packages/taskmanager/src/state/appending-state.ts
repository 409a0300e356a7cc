import type {
  AggregatingState,
  AggregatingStateDescriptor,
  AppendingState,
  ReducingState,
  ReducingStateDescriptor,
} from '@weir/api';

/** The current key's accumulator as a backend stores it (undefined when there is none). */
export interface AccumulatorCell<ACC> {
  get(): ACC | undefined;
  set(acc: ACC): void;
  clear(): void;
}

/** Reducing and aggregating state over any backend's cell (Flink's AbstractHeapAppendingState, for both backends). */
function appending<IN, ACC, OUT>(
  cell: AccumulatorCell<ACC>,
  fold: (acc: ACC | undefined, v: IN) => ACC,
  result: (acc: ACC) => OUT,
): AppendingState<IN, OUT> {
  return {
    get: () => {
      const acc = cell.get();
      return acc === undefined ? undefined : result(acc);
    },
    add: (v: IN) => cell.set(fold(cell.get(), v)),
    clear: () => cell.clear(),
  };
}

export function reducingState<T>(
  desc: ReducingStateDescriptor<T>,
  cell: AccumulatorCell<T>,
): ReducingState<T> {
  const reduce = desc.reduceFunction;
  return appending<T, T, T>(
    cell,
    (acc, v) => (acc === undefined ? v : reduce(acc, v)),
    (acc) => acc,
  );
}

export function aggregatingState<IN, ACC, OUT>(
  desc: AggregatingStateDescriptor<IN, ACC, OUT>,
  cell: AccumulatorCell<ACC>,
): AggregatingState<IN, OUT> {
  const f = desc.aggregateFunction;
  return appending<IN, ACC, OUT>(
    cell,
    (acc, v) => f.add(v, acc === undefined ? f.createAccumulator() : acc),
    (acc) => f.getResult(acc),
  );
}
