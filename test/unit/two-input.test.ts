import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  BroadcastProcessFunction,
  KeyedBroadcastProcessFunction,
  KeyedCoProcessFunction,
  MapStateDescriptor,
  ProcessJoinFunction,
  StreamExecutionEnvironment,
  ValueStateDescriptor,
  type Collector,
  type ValueState,
} from '@weir/api';
import type { StreamNode } from '@weir/api/internal';
import { buildJobGraph } from '../../packages/core/src/index.js';
import { createOperator } from '../../packages/taskmanager/src/operators/operator-factory.js';
import type { OperatorStateBackend } from '../../packages/taskmanager/src/state/operator-state-backend.js';
import type { SubtaskInfo } from '../../packages/taskmanager/src/task/runtime-context.js';

const rulesDesc = new MapStateDescriptor<string, number>('rules');
const countDesc = new ValueStateDescriptor<number>('count');

class NoopJoin extends ProcessJoinFunction<number, number, number> {
  processElement(): void {}
}

/** Counts per key; a broadcast 'reset' sets every key's count to 0 through applyToKeyedState. */
class Counts extends KeyedBroadcastProcessFunction<string, string, string, string> {
  private count!: ValueState<number>;
  override open(): void {
    this.count = this.getRuntimeContext().getState(countDesc);
  }
  processElement(
    v: string,
    ctx: KeyedBroadcastProcessFunction.ReadOnlyContext<string>,
    out: Collector<string>,
  ): void {
    this.count.update((this.count.value() ?? 0) + 1);
    out.collect(
      `${ctx.getCurrentKey()}=${this.count.value()} limit=${ctx.getBroadcastState(rulesDesc).get('limit')}`,
    );
  }
  processBroadcastElement(
    v: string,
    ctx: KeyedBroadcastProcessFunction.Context,
    out: Collector<string>,
  ): void {
    if (v === 'reset')
      ctx.applyToKeyedState(countDesc, (key, state) => {
        out.collect(`reset ${String(key)} from ${state.value()}`);
        state.update(0);
      });
    else ctx.getBroadcastState(rulesDesc).put('limit', Number(v));
  }
}

function info(subtaskIndex: number, parallelism: number, restoredCheckpointId?: number): SubtaskInfo {
  return {
    jobId: 'j',
    taskName: 't',
    subtaskIndex,
    parallelism,
    maxParallelism: 128,
    attemptNumber: 0,
    workingDirectory: '.',
    ...(restoredCheckpointId !== undefined ? { restoredCheckpointId } : {}),
  };
}

function nodeOf(env: StreamExecutionEnvironment, kind: string): StreamNode {
  const node = env.getStreamGraph('j').nodes.find((n) => n.kind === kind);
  assert.ok(node, `a ${kind} node`);
  return node;
}

describe('two-input streams: planning', () => {
  test('edges into a two-input operator say which input they feed; the job graph and channels carry it', () => {
    const env = StreamExecutionEnvironment.getExecutionEnvironment();
    const a = env.fromElements(1, 2);
    const b = env.fromElements('x');
    a.connect(b)
      .map({ map1: (n) => n, map2: (s) => s.length })
      .sinkTo({ createWriter: () => ({ write: () => {} }) });
    const g = env.getStreamGraph('j');
    const co = g.nodes.find((n) => n.kind === 'coProcess')!;
    const into = g.edges.filter((e) => e.targetId === co.id);
    assert.deepEqual(into.map((e) => e.typeNumber).sort(), [0, 1]);
    const jg = buildJobGraph(g);
    assert.deepEqual(
      jg.edges
        .filter((e) => e.targetOperatorId === co.id)
        .map((e) => e.typeNumber)
        .sort(),
      [0, 1],
    );
  });

  test('clear planning errors', () => {
    const env = StreamExecutionEnvironment.getExecutionEnvironment();
    const a = env.fromElements(1, 2);
    const b = env.fromElements(3);
    class Keyed extends KeyedCoProcessFunction<number, number, number, number> {
      processElement1(): void {}
      processElement2(): void {}
    }
    assert.throws(
      () => a.connect(b).process(new Keyed()),
      /not keyed: call connect\(\.\.\.\)\.keyBy\(key1, key2\)/,
    );
    assert.throws(
      () => (a as unknown as { intervalJoin(x: unknown): unknown }).intervalJoin(b),
      /intervalJoin\(\) needs a keyed stream on both sides/,
    );
    assert.throws(
      () =>
        a
          .keyBy((n) => n)
          .intervalJoin(b.keyBy((n) => n))
          .between(10, 5),
      /lower bound must not be above the upper bound/,
    );
    assert.throws(
      () =>
        a
          .keyBy((n) => n)
          .intervalJoin(b.keyBy((n) => n))
          .between(0, 0)
          .lowerBoundExclusive()
          .process(new NoopJoin()),
      /empty with exclusive bounds/,
    );
    assert.throws(() => a.broadcast(new ValueStateDescriptor('v') as never), /takes MapStateDescriptors/);
    assert.throws(
      () => a.broadcast(rulesDesc, new MapStateDescriptor('rules')),
      /two MapStateDescriptors named 'rules'/,
    );
    class NonKeyed extends BroadcastProcessFunction<number, number, number> {
      processElement(): void {}
      processBroadcastElement(): void {}
    }
    assert.throws(
      () =>
        a
          .keyBy((n) => n)
          .connect(b.broadcast(rulesDesc))
          .process(new NonKeyed()),
      /use a KeyedBroadcastProcessFunction/,
    );
    assert.throws(() => a.connect(b).map({} as never), /needs a CoMapFunction/);
    assert.throws(
      () =>
        a
          .join(b)
          .where((n) => n)
          .window({} as never),
      /call where\(key\)\.equalTo\(key\) before window/,
    );
    a.connect(a)
      .map({ map1: (n) => n, map2: (n) => n })
      .sinkTo({ createWriter: () => ({ write: () => {} }) });
    assert.throws(() => env.getStreamGraph('j'), /reads 'Collection Source' on both inputs|on both inputs/);
  });
});

describe('broadcast state in an operator', () => {
  function keyedBroadcast(restored?: ReturnType<OperatorStateBackend['snapshot']>, sub = info(0, 1)) {
    const env = StreamExecutionEnvironment.getExecutionEnvironment();
    env
      .fromElements('a')
      .keyBy((s) => s)
      .connect(env.fromElements('1').broadcast(rulesDesc))
      .process(new Counts())
      .sinkTo({ createWriter: () => ({ write: () => {} }) });
    const out: string[] = [];
    const op = createOperator(
      nodeOf(env, 'keyedBroadcastProcess'),
      sub,
      { collect: (v) => out.push(String(v)) },
      restored,
    );
    return { op, out };
  }

  test('applyToKeyedState visits every key with state; the keyed side reads broadcast state', async () => {
    const { op, out } = keyedBroadcast();
    await op.keyedBackend?.open();
    await op.open();
    op.collect2!('7');
    for (const k of ['a', 'b', 'a', 'c']) op.collect(k);
    op.collect2!('reset');
    op.collect('a');
    assert.deepEqual(out.slice(0, 4), ['a=1 limit=7', 'b=1 limit=7', 'a=2 limit=7', 'c=1 limit=7']);
    assert.deepEqual(out.slice(4, 7).sort(), ['reset a from 2', 'reset b from 1', 'reset c from 1']);
    assert.deepEqual(out.slice(7), ['a=1 limit=7']);
  });

  test("each subtask restores its own copy; on rescale every subtask takes subtask 0's copy", async () => {
    // two old subtasks whose copies differ (as they never should): the restore must pick deterministically
    const snapshots = [0, 1].map((i) => {
      const { op } = keyedBroadcast(undefined, info(i, 2));
      op.collect2!(String(10 + i));
      op.snapshotState!(1);
      return op.operatorState!.snapshot()!;
    });
    const union = {
      ...snapshots[0],
      'weir.broadcast-state': {
        mode: 'union' as const,
        items: snapshots.flatMap((s) => s['weir.broadcast-state']!.items),
      },
      'weir.watermark': {
        mode: 'union' as const,
        items: snapshots.flatMap((s) => s['weir.watermark']!.items),
      },
    };
    const read = async (sub: SubtaskInfo): Promise<string> => {
      const { op, out } = keyedBroadcast(union, sub);
      await op.keyedBackend?.open();
      await op.open();
      // a key of this subtask's key groups
      for (let i = 0; out.length === 0 && i < 1000; i++) {
        try {
          op.collect(`k${i}`);
        } catch {
          /* another subtask's key */
        }
      }
      return out[0]!.replace(/^k\d+/, 'k');
    };
    assert.equal(await read(info(1, 2, 1)), 'k=1 limit=11', 'same parallelism: its own copy');
    for (let i = 0; i < 3; i++)
      assert.equal(await read(info(i, 3, 1)), 'k=1 limit=10', `rescaled subtask ${i}`);
  });

  test('processElement may not write broadcast state', async () => {
    const env = StreamExecutionEnvironment.getExecutionEnvironment();
    class Writes extends BroadcastProcessFunction<number, number, number> {
      processElement(v: number, ctx: BroadcastProcessFunction.ReadOnlyContext): void {
        (ctx.getBroadcastState(rulesDesc) as unknown as { put(k: string, v: number): void }).put('x', v);
      }
      processBroadcastElement(): void {}
    }
    env
      .fromElements(1)
      .connect(env.fromElements(2).broadcast(rulesDesc))
      .process(new Writes())
      .sinkTo({ createWriter: () => ({ write: () => {} }) });
    const op = createOperator(nodeOf(env, 'broadcastProcess'), info(0, 1), { collect: () => {} });
    await op.keyedBackend?.open();
    await op.open();
    assert.throws(() => op.collect(1), /broadcast state 'rules' is read-only in processElement/);
  });
});

describe('keyed two-input operators', () => {
  test('keys of different types on the two inputs fail with both named', async () => {
    const env = StreamExecutionEnvironment.getExecutionEnvironment();
    class Noop extends KeyedCoProcessFunction<unknown, number, string, number> {
      processElement1(): void {}
      processElement2(): void {}
    }
    env
      .fromElements(1)
      .connect(env.fromElements('1'))
      .keyBy(
        (n): unknown => n,
        (s): unknown => s,
      )
      .process(new Noop())
      .sinkTo({ createWriter: () => ({ write: () => {} }) });
    const op = createOperator(nodeOf(env, 'keyedCoProcess'), info(0, 1), { collect: () => {} });
    await op.keyedBackend?.open();
    await op.open();
    op.collect(1);
    assert.throws(
      () => op.collect2!('1'),
      /'KeyedCoProcess': the first input's keys are numbers and the second input's are strings \(1 and "1"\)/,
    );
  });
});
