import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { StreamExecutionEnvironment, type Collector, type Sink } from '../../packages/api/src/index.js';
import {
  assignToKeyGroup,
  buildJobGraph,
  computeKeyGroupRangeForOperatorIndex,
  computeOperatorIndexForKeyGroup,
  decodeEvent,
  decodeRecords,
  encodeEvent,
  encodeRecords,
  hashKey,
  requiredSlots,
} from '../../packages/core/src/index.js';
import { ResultPartition } from '../../packages/taskmanager/src/network/result-partition.js';
import { createRecordWriter } from '../../packages/taskmanager/src/network/record-writer.js';
import { InputGate } from '../../packages/taskmanager/src/network/input-gate.js';

const discard: Sink<unknown> = { createWriter: () => ({ write: () => {} }) };

describe('key groups', () => {
  test('key-group ranges of all subtasks cover 0..maxParallelism-1 exactly once', () => {
    for (const maxP of [1, 7, 128, 1000]) {
      for (const p of [1, 2, 3, 5, 7].filter((x) => x <= maxP)) {
        const seen = new Array<number>(maxP).fill(0);
        for (let i = 0; i < p; i++) {
          const r = computeKeyGroupRangeForOperatorIndex(maxP, p, i);
          for (let kg = r.start; kg <= r.end; kg++) {
            seen[kg]!++;
            assert.equal(computeOperatorIndexForKeyGroup(maxP, p, kg), i, `kg ${kg} maxP ${maxP} p ${p}`);
          }
        }
        assert.ok(seen.every((n) => n === 1));
      }
    }
  });

  test('assignment is stable, in range, and spreads keys', () => {
    const counts = new Array<number>(128).fill(0);
    for (let i = 0; i < 12800; i++) {
      const kg = assignToKeyGroup(`key-${i}`, 128);
      assert.ok(kg >= 0 && kg < 128);
      counts[kg]!++;
    }
    assert.ok(
      Math.min(...counts) > 50 && Math.max(...counts) < 160,
      `skewed: ${Math.min(...counts)}..${Math.max(...counts)}`,
    );
    assert.equal(hashKey('hello'), hashKey('hello'));
    assert.equal(hashKey(['a', 1]), hashKey(['a', 1]));
    assert.notEqual(hashKey('a'), hashKey('b'));
    assert.equal(assignToKeyGroup(42, 128), assignToKeyGroup(42, 128));
    assert.throws(() => hashKey(undefined), /null or undefined/);
  });
});

describe('record codec', () => {
  test('batches and events round-trip', () => {
    const records: unknown[] = [
      ['word', 1],
      { a: 1, b: [1, 2, 'x'], c: null },
      'plain',
      3.25,
      -7,
      true,
      'ünïcödé ✓',
      [],
      {},
    ];
    assert.deepEqual(decodeRecords(encodeRecords(records)), records);
    const big = Array.from({ length: 10_000 }, (_, i) => [`w${i}`, i]);
    assert.deepEqual(decodeRecords(encodeRecords(big)), big);
    const ev = { type: 'CheckpointBarrier' as const, checkpointId: 7, timestamp: 123 };
    assert.deepEqual(decodeEvent(encodeEvent(ev)), ev);
    assert.throws(() => decodeRecords(encodeEvent(ev)), /expected a record batch/);
  });
});

describe('graph building and chaining', () => {
  test('forward one-to-one operators chain; keyBy starts a new vertex', () => {
    const env = StreamExecutionEnvironment.getExecutionEnvironment().setParallelism(2);
    env
      .fromSequence(1, 10)
      .map((x: number) => x + 1)
      .filter((x: number) => x > 2)
      .keyBy((x) => x % 3)
      .reduce((a: number, b: number) => a + b)
      .map((x: number) => x)
      .sinkTo(discard);
    const jg = buildJobGraph(env.getStreamGraph('t'));
    assert.deepEqual(
      jg.vertices.map((v) => v.operators.map((o) => o.kind)),
      [
        ['source', 'map', 'filter'],
        ['reduce', 'map', 'sink'],
      ],
    );
    assert.equal(jg.edges.length, 1);
    assert.equal(jg.edges[0]!.partitioner, 'hash');
    assert.equal(jg.vertices[1]!.operators[0]!.keyed, true);
    assert.equal(requiredSlots(jg), 2);
  });

  test('different parallelism rebalances, union merges inputs, uid names operators', () => {
    const env = StreamExecutionEnvironment.getExecutionEnvironment().setParallelism(3);
    const a = env.fromSequence(1, 10).uid('a-src');
    const b = env.fromElements(1, 2, 3).setParallelism(1);
    a.union(b)
      .map((x: number) => x)
      .setParallelism(2)
      .uid('m')
      .sinkTo(discard);
    const jg = buildJobGraph(env.getStreamGraph('t'));
    const m = jg.vertices.find((v) => v.id === 'uid-m')!;
    assert.ok(m, `vertices: ${jg.vertices.map((v) => v.id)}`);
    const into = jg.edges.filter((e) => e.targetVertexId === m.id);
    assert.deepEqual(into.map((e) => e.partitioner).sort(), ['rebalance', 'rebalance']);
    assert.ok(jg.vertices.some((v) => v.id === 'uid-a-src'));
    assert.equal(requiredSlots(jg), 3);
  });

  test('operator ids are deterministic across plannings', () => {
    const plan = () => {
      const env = StreamExecutionEnvironment.getExecutionEnvironment();
      env
        .fromSequence(1, 5)
        .map((x: number) => x)
        .keyBy((x) => x)
        .process({ processElement() {} } as never)
        .sinkTo(discard);
      return buildJobGraph(env.getStreamGraph('t')).vertices.map((v) => v.operators.map((o) => o.id));
    };
    assert.deepEqual(plan(), plan());
  });

  test('a job without sinks and bad settings get clear errors', () => {
    const env = StreamExecutionEnvironment.getExecutionEnvironment();
    env.fromSequence(1, 3).map((x: number) => x);
    assert.throws(() => env.getStreamGraph('t'), /no sinks/);
    assert.throws(() => env.setParallelism(0), /positive integer/);
    assert.throws(
      () =>
        env
          .fromSequence(1, 2)
          .map((x: number) => x)
          .uid('bad uid'),
      /uid/,
    );
    const env2 = StreamExecutionEnvironment.getExecutionEnvironment().setMaxParallelism(4);
    env2.fromSequence(1, 3).setParallelism(8).sinkTo(discard);
    assert.throws(() => env2.getStreamGraph('t'), /above the max parallelism 4/);
  });
});

/** A network buffer of whole records (see network/buffer-format.ts). */
function recordsBuffer(records: unknown[]): Uint8Array {
  return Buffer.concat([Buffer.from([0]), encodeRecords(records)]);
}

describe('partitioners and credit-based flow control', () => {
  function partition(n: number, sent: Array<[number, string]>): ResultPartition {
    return new ResultPartition({
      partitionId: 'p',
      numberOfSubpartitions: n,
      maxBacklog: 2,
      onAvailable: () => {},
      send: (_id, sub, kind) => sent.push([sub, kind]),
    });
  }

  test('hash sends every key to the subtask owning its key group; rebalance round-robins; broadcast copies', () => {
    const sent: Array<[number, string]> = [];
    const p = partition(3, sent);
    for (let i = 0; i < 3; i++) p.onRequest(i, 1000);
    const counter = { recordsOut: 0 };
    const hash = createRecordWriter(p, 'hash', 0, 128, (r) => (r as [string])[0], counter);
    const emitted: unknown[][] = [[], [], []];
    const orig = p.emit.bind(p);
    p.emit = (sub: number, r: unknown) => {
      emitted[sub]!.push(r);
      orig(sub, r);
    };
    for (let i = 0; i < 300; i++) hash.collect([`k${i % 30}`, i]);
    for (let sub = 0; sub < 3; sub++) {
      for (const r of emitted[sub] as Array<[string]>) {
        assert.equal(computeOperatorIndexForKeyGroup(128, 3, assignToKeyGroup(r[0], 128)), sub);
      }
    }
    emitted.forEach((e) => (e.length = 0));
    const rr = createRecordWriter(p, 'rebalance', 1, 128, undefined, counter);
    for (let i = 0; i < 9; i++) rr.collect(i);
    assert.deepEqual(
      emitted.map((e) => e.length),
      [3, 3, 3],
    );
    assert.deepEqual(emitted[1]!.slice(0, 1), [0]);
    const sentBefore = sent.length;
    const bc = createRecordWriter(p, 'broadcast', 0, 128, undefined, counter);
    bc.collect('x');
    p.flushAll();
    assert.equal(counter.recordsOut, 310);
    assert.ok(sent.length - sentBefore >= 3);
  });

  test('a producer sends one buffer per credit and becomes unavailable at the backlog limit', () => {
    const sent: Array<[number, string]> = [];
    const p = partition(1, sent);
    const collect: Collector<unknown> = { collect: (r) => p.emit(0, r) };
    p.onRequest(0, 1);
    for (let b = 0; b < 4; b++) {
      for (let i = 0; i < 10; i++) collect.collect(i);
      p.flushAll();
    }
    assert.equal(sent.length, 1, 'only one buffer for one credit');
    assert.equal(p.isAvailable(), false);
    p.onCredit(0, 2);
    assert.equal(sent.length, 3);
    p.broadcastEvent({ type: 'EndOfPartition' });
    assert.equal(sent.length, 3, 'an event waits behind the queued buffer');
    p.onCredit(0, 1);
    assert.deepEqual(sent.slice(3), [
      [0, 'buffer'],
      [0, 'event'],
    ]);
    assert.equal(p.isDrained(), true);
  });

  test('the input gate reads channels round-robin, returns credits, and finishes on end of partition', () => {
    const credits: Array<[number, number]> = [];
    const gate = new InputGate(2, (ch, n) => credits.push([ch, n]));
    gate.onFrame(0, 'buffer', recordsBuffer([1, 2]));
    gate.onFrame(0, 'buffer', recordsBuffer([3]));
    gate.onFrame(1, 'buffer', recordsBuffer([10]));
    gate.onFrame(1, 'event', encodeEvent({ type: 'EndOfPartition' }));
    gate.onFrame(0, 'event', encodeEvent({ type: 'EndOfPartition' }));
    const seen: unknown[] = [];
    const handler = { onRecords: (rs: unknown[]) => seen.push(...rs), onEvent: () => {} };
    while (gate.pollNext(handler)) {
      /* drain */
    }
    assert.deepEqual(seen, [1, 2, 10, 3]);
    assert.equal(gate.isFinished(), true);
    gate.flushCredits();
    assert.equal(credits.length, 0);
    const g2 = new InputGate(1, (ch, n) => credits.push([ch, n]));
    g2.onFrame(0, 'buffer', recordsBuffer([1]));
    g2.pollNext(handler);
    g2.flushCredits();
    assert.deepEqual(credits, [[0, 1]]);
  });
});
