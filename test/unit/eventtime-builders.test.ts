import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  CountTrigger,
  EventTimeSessionWindows,
  GlobalWindows,
  KeyedProcessFunction,
  OutputTag,
  SlidingEventTimeWindows,
  StreamExecutionEnvironment,
  TumblingEventTimeWindows,
  WatermarkStrategy,
} from '../../packages/api/src/index.js';
import type { Collector, DataStream, Source } from '../../packages/api/src/index.js';
import { buildJobGraph } from '../../packages/core/src/index.js';

function env(): StreamExecutionEnvironment {
  return StreamExecutionEnvironment.getExecutionEnvironment().setParallelism(2);
}

class WithTimer extends KeyedProcessFunction<number, number, number> {
  processElement(v: number, _ctx: KeyedProcessFunction.Context<number>, out: Collector<number>): void {
    out.collect(v);
  }
  override onTimer(): void {}
}

describe('event-time builders', () => {
  test('window on a non-keyed stream fails at planning time, pointing at keyBy and windowAll', () => {
    const s = env().fromElements(1, 2, 3) as unknown as { window(a: unknown): unknown };
    assert.throws(
      () => s.window(TumblingEventTimeWindows.of(1000)),
      /needs a keyed stream: call keyBy\(\.\.\.\) first, or windowAll/,
    );
  });

  test('a function with onTimer on a non-keyed process() fails naming it', () => {
    const s = env().fromElements(1, 2, 3);
    assert.throws(() => s.process(new WithTimer() as never), /WithTimer.*timers need a keyed stream/);
  });

  test('bad assigner and window parameters fail when the job is planned', () => {
    assert.throws(() => EventTimeSessionWindows.withGap(0), /gap/);
    assert.throws(() => SlidingEventTimeWindows.of(1000, 2000), /slide/);
    assert.throws(() => TumblingEventTimeWindows.of(-5), /size/);
    const keyed = env()
      .fromElements(1, 2)
      .keyBy((n) => n);
    assert.throws(
      () => keyed.window(TumblingEventTimeWindows.of(10)).allowedLateness(-1),
      /allowedLateness.*>= 0/,
    );
    assert.throws(() => keyed.window({} as never), /needs a WindowAssigner/);
    assert.throws(
      () => keyed.window(TumblingEventTimeWindows.of(10)).aggregate({ add: () => 0 } as never),
      /createAccumulator\(\) is missing/,
    );
    assert.throws(() => keyed.countWindow(0), /countWindow\(size\) needs an integer >= 1/);
    assert.throws(
      () =>
        env()
          .fromElements(1)
          .assignTimestampsAndWatermarks({} as never),
      /needs a WatermarkStrategy/,
    );
    assert.throws(() => env().setAutoWatermarkInterval(0), /> 0/);
  });

  test('graph: window nodes carry their settings, side outputs are tagged edges that never chain', () => {
    const e = env();
    const late = new OutputTag<number>('late');
    const w = e
      .fromSource(
        e.fromElements(1).transformation.source! as Source<number>,
        WatermarkStrategy.forMonotonousTimestamps<number>().withTimestampAssigner((n) => n),
        'Numbers',
      )
      .keyBy((n) => n % 2)
      .window(TumblingEventTimeWindows.of(10))
      .allowedLateness(5)
      .sideOutputLateData(late)
      .reduce((a, b) => a + b);
    w.print();
    (w.getSideOutput(late) as DataStream<number>).map((n) => n).print();
    e.fromElements(1)
      .windowAll(GlobalWindows.create())
      .trigger(CountTrigger.of(2))
      .reduce((a, b) => a + b)
      .print();
    const g = e.getStreamGraph('j');
    const windows = g.nodes.filter((n) => n.kind === 'window');
    assert.equal(windows.length, 2);
    assert.equal(windows[0]!.transformation.window!.allowedLateness, 5);
    assert.equal(windows[0]!.transformation.window!.lateDataOutputTag!.id, 'late');
    assert.equal(windows[1]!.parallelism, 1, 'windowAll runs as one subtask');
    const source = g.nodes.find((n) => n.name === 'Numbers')!;
    assert.ok(source.transformation.watermarkStrategy, 'the source carries its strategy');
    const side = g.edges.filter((x) => x.outputTag === 'late');
    assert.equal(side.length, 1);
    const jg = buildJobGraph(g);
    // the side-output consumer is its own vertex even over a forward edge of equal parallelism
    assert.ok(jg.edges.some((x) => x.sourceOperatorId === windows[0]!.id && x.partitioner === 'forward'));
    assert.equal(jg.vertices.filter((v) => v.operators.some((o) => o.id === windows[0]!.id)).length, 1);
    assert.ok(jg.vertices.find((v) => v.operators[0]!.id === windows[0]!.id)!.operators.length === 1);
  });
});
