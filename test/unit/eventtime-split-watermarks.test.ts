import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
// through @weir/api, as the TaskManager code sees it
import {
  InputStatus,
  SplitSource,
  Watermark,
  WatermarkStrategy,
  type SplitReader,
  type SplitReaderOutput,
  type TaskInfo,
} from '@weir/api';
import { TimestampsAndWatermarks } from '../../packages/taskmanager/src/eventtime/watermark-generation.js';
import {
  AfterRecordWatermarks,
  timestampingSourceOutput,
} from '../../packages/taskmanager/src/operators/event-time-operators.js';

interface TimedSplit {
  splitId: string;
  next: number;
}

/**
 * Three splits with different event-time progress: 'fast' advances 100 ms per record, 'slow'
 * 10 ms per record, 'idle' has nothing to read (until told otherwise). Each record's timestamp
 * comes from the reader (the record timestamp argument), as a message time would.
 */
class Progressing extends SplitSource<string, TimedSplit> {
  readonly boundedness = 'CONTINUOUS_UNBOUNDED' as const;
  idleHasData = false;
  createSplits(): TimedSplit[] {
    return ['fast', 'slow', 'idle'].map((splitId) => ({ splitId, next: 0 }));
  }
  createSplitReader(split: TimedSplit): SplitReader<string, TimedSplit> {
    const s = { ...split };
    const step = s.splitId === 'fast' ? 100 : 10;
    return {
      fetch: (out: SplitReaderOutput<string>, budget: number): InputStatus => {
        if (s.splitId === 'idle' && !this.idleHasData) return InputStatus.NOTHING_AVAILABLE;
        for (let k = 0; k < Math.min(budget, 5); k++, s.next++)
          out.collect(`${s.splitId}-${s.next}`, s.next * step);
        return InputStatus.MORE_AVAILABLE;
      },
      isAvailable: () => Promise.resolve(),
      snapshot: () => ({ ...s }),
    };
  }
}

const info: TaskInfo = {
  jobId: 'j',
  taskName: 'Source: progressing (1/1)',
  subtaskIndex: 0,
  parallelism: 1,
  attemptNumber: 0,
  workingDirectory: process.cwd(),
};

describe('per-split watermarks of a SplitSource (fromSource with a WatermarkStrategy)', () => {
  test('a slow split holds the watermark back, an idle split does not, each split has its own generator', () => {
    let now = 0;
    const watermarks: number[] = [];
    const statuses: boolean[] = [];
    const hold = new AfterRecordWatermarks({
      emitWatermark: (t) => watermarks.push(t),
      emitWatermarkStatus: (idle) => statuses.push(idle),
    });
    const tw = new TimestampsAndWatermarks<unknown>(
      WatermarkStrategy.forBoundedOutOfOrderness<unknown>(0).withIdleness(1000) as never,
      'Source: progressing',
      () => now,
      hold,
      200,
    );
    const seen: Array<[unknown, number | undefined]> = [];
    const slot = { value: undefined as number | undefined };
    const out = timestampingSourceOutput(
      tw,
      hold,
      slot,
      { collect: (r) => seen.push([r, slot.value]) },
      {
        recordsIn: 0,
      },
    );
    const source = new Progressing();
    const reader = source.createReader(info);
    // 5 records per split per poll: after 4 polls fast is at 1,900 ms, slow at 190 ms
    for (let i = 0; i < 4; i++) reader.pollNext(out);
    assert.deepEqual(seen[0], ['fast-0', 0]);
    assert.ok(seen.some(([r, t]) => r === 'slow-19' && t === 190));
    now = 200;
    tw.onProcessingTime(now);
    // the split with no data is not idle yet and has no watermark: it holds everything back
    // until its idle timeout
    assert.deepEqual(watermarks, []);
    // past the idle timeout the empty split is idle and left out (the others read on): the
    // slow split decides, at 240 ms after one more poll
    reader.pollNext(out);
    now = 1200;
    tw.onProcessingTime(now);
    assert.deepEqual(watermarks, [239]);
    for (let i = 0; i < 4; i++) reader.pollNext(out);
    now = 1400;
    tw.onProcessingTime(now);
    // fast is at 4,400 ms and slow at 440 ms: the slow split holds the watermark back
    assert.deepEqual(watermarks, [239, 439]);
    // the idle split gets data far behind: active again, and now it is the minimum
    source.idleHasData = true;
    reader.pollNext(out);
    now = 1600;
    tw.onProcessingTime(now);
    assert.equal(watermarks.at(-1), 439, 'an idle split coming back does not pull the watermark back');
    assert.deepEqual(statuses, [], 'the subtask never went idle: other splits were active');
  });

  test('a reader that does not name its splits keeps one generator for the subtask', () => {
    const watermarks: number[] = [];
    const hold = new AfterRecordWatermarks({
      emitWatermark: (t) => watermarks.push(t),
      emitWatermarkStatus: () => {},
    });
    let now = 0;
    const tw = new TimestampsAndWatermarks<unknown>(
      WatermarkStrategy.forMonotonousTimestamps<unknown>() as never,
      'Source: plain',
      () => now,
      hold,
      200,
    );
    const out = timestampingSourceOutput(
      tw,
      hold,
      { value: undefined },
      { collect: () => {} },
      { recordsIn: 0 },
    );
    out.collect('a', 500);
    out.collect('b', 700);
    now = 200;
    tw.onProcessingTime(now);
    assert.deepEqual(watermarks, [699]);
  });

  test('with an assigner and a built-in generator: the timestamps the assigner gives, the same watermarks as a generator of its own, bad timestamps fail naming the source', () => {
    const run = (strategy: WatermarkStrategy<unknown>) => {
      const watermarks: number[] = [];
      const hold = new AfterRecordWatermarks({
        emitWatermark: (t) => watermarks.push(t),
        emitWatermarkStatus: () => {},
      });
      let now = 0;
      const tw = new TimestampsAndWatermarks<unknown>(strategy, 'Source: events', () => now, hold, 200);
      const slot = { value: undefined as number | undefined };
      const seen: Array<number | undefined> = [];
      const counters = { recordsIn: 0 };
      const out = timestampingSourceOutput(
        tw,
        hold,
        slot,
        { collect: () => seen.push(slot.value) },
        counters,
      );
      const split = out.createOutputForSplit('s');
      // the assigner gets the reader's timestamp too: event time = record time + 1000 * field
      for (const [v, t] of [
        [1, 10],
        [3, 20],
        [2, 30],
        [0, 5000],
      ] as const)
        split.collect({ v }, t);
      now = 200;
      tw.onProcessingTime(now);
      split.collect({ v: 9 }, 0);
      now = 400;
      tw.onProcessingTime(now);
      return { watermarks, seen, recordsIn: counters.recordsIn, out: split };
    };
    const assigner = (e: unknown, t: number | undefined) => (e as { v: number }).v * 1000 + (t ?? 0);
    const builtIn = run(
      WatermarkStrategy.forBoundedOutOfOrderness<unknown>(500).withTimestampAssigner(assigner),
    );
    assert.deepEqual(builtIn.seen, [1010, 3020, 2030, 5000, 9000]);
    assert.equal(builtIn.recordsIn, 5);
    // max 5000 - 500 - 1, then 9000 - 500 - 1
    assert.deepEqual(builtIn.watermarks, [4499, 8499]);
    const own = run(
      WatermarkStrategy.forGenerator<unknown>(() => {
        let max = -Infinity;
        return {
          onEvent: (_e, ts) => {
            max = Math.max(max, ts);
          },
          onPeriodicEmit: (o) => {
            if (max !== -Infinity) o.emitWatermark(new Watermark(max - 500 - 1));
          },
        };
      }).withTimestampAssigner(assigner),
    );
    assert.deepEqual(own.seen, builtIn.seen);
    assert.deepEqual(own.watermarks, builtIn.watermarks);
    for (const bad of [NaN, Infinity, '7', undefined]) {
      const tw = new TimestampsAndWatermarks<unknown>(
        WatermarkStrategy.forMonotonousTimestamps<unknown>().withTimestampAssigner(() => bad as number),
        'Source: events',
        () => 0,
        { emitWatermark: () => {}, emitWatermarkStatus: () => {} },
        200,
      );
      const hold = new AfterRecordWatermarks({ emitWatermark: () => {}, emitWatermarkStatus: () => {} });
      const head = timestampingSourceOutput(
        tw,
        hold,
        { value: undefined },
        { collect: () => {} },
        { recordsIn: 0 },
      );
      assert.throws(
        () => head.collect({ id: 3 }),
        /The timestamp assigner of 'Source: events' returned .* for the record \{"id":3\}; it must return a finite number/,
        `value ${String(bad)}`,
      );
    }
  });
});
