// Exercises the DataStream API on a real cluster; every branch ends in collect() with a tag.
import {
  StreamExecutionEnvironment,
  KeyedProcessFunction,
  RichMapFunction,
  ListStateDescriptor,
  MapStateDescriptor,
  ReducingStateDescriptor,
  AggregatingStateDescriptor,
} from '@weir/api';
import type { Collector, ListState, MapState, ReducingState, AggregatingState } from '@weir/api';

type Out = [string, number, number, number, number, number, number];

class AllStates extends KeyedProcessFunction<number, number, Out> {
  private list!: ListState<number>;
  private parity!: MapState<number, number>;
  private sum!: ReducingState<number>;
  private avg!: AggregatingState<number, number>;
  override open(): void {
    const ctx = this.getRuntimeContext();
    this.list = ctx.getListState(new ListStateDescriptor<number>('seen'));
    this.parity = ctx.getMapState(new MapStateDescriptor<number, number>('parity'));
    this.sum = ctx.getReducingState(new ReducingStateDescriptor<number>('sum', (a, b) => a + b));
    this.avg = ctx.getAggregatingState(
      new AggregatingStateDescriptor<number, [number, number], number>('avg', {
        createAccumulator: () => [0, 0],
        add: (v, acc) => [acc[0] + v, acc[1] + 1],
        getResult: (acc) => acc[0] / acc[1],
      }),
    );
  }
  override processElement(n: number, ctx: KeyedProcessFunction.Context<number>, out: Collector<Out>): void {
    this.list.add(n);
    this.parity.put(n % 2, (this.parity.get(n % 2) ?? 0) + 1);
    this.sum.add(n);
    this.avg.add(n);
    out.collect([
      'state',
      ctx.getCurrentKey(),
      [...this.list.get()].length,
      this.sum.get()!,
      this.avg.get()!,
      this.parity.get(0) ?? 0,
      this.parity.get(1) ?? 0,
    ]);
  }
}

class WhoAmI extends RichMapFunction<number, [string, number, number]> {
  map(n: number): [string, number, number] {
    return ['rebalance', n, this.getRuntimeContext().getIndexOfThisSubtask()];
  }
}

const env = StreamExecutionEnvironment.getExecutionEnvironment();
env.setParallelism(3);

env
  .fromSequence(1, 100)
  .union(env.fromElements(...Array.from({ length: 20 }, (_, i) => 101 + i)))
  .keyBy((n) => n % 5)
  .process(new AllStates())
  .collect();

const pairs = env
  .fromElements<[string, number]>(['a', 1], ['b', 2], ['a', 3], ['b', -4], ['a', 10])
  .setParallelism(1);
pairs
  .keyBy((t) => t[0])
  .sum(1)
  .map((t: [string, number]) => ['sum', ...t])
  .collect();
pairs
  .keyBy((t) => t[0])
  .min(1)
  .map((t: [string, number]) => ['min', ...t])
  .collect();
pairs
  .keyBy((t) => t[0])
  .max(1)
  .map((t: [string, number]) => ['max', ...t])
  .collect();

env
  .fromElements(1, 2, 3)
  .setParallelism(1)
  .broadcast()
  .map((x: number) => ['broadcast', x])
  .collect();
env.fromSequence(1, 30).setParallelism(1).rebalance().map(new WhoAmI()).collect();
env
  .fromSequence(1, 50)
  .filter((n: number) => n % 10 === 0)
  .map((n: number) => ['filter', n])
  .collect();

await env.execute('api-coverage');
