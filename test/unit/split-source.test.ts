import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  InputStatus,
  SplitSource,
  type ReaderOutput,
  type SourceReader,
  type SplitReader,
  type SplitReaderOutput,
  type TaskInfo,
} from '../../packages/api/src/index.js';

interface RangeSplit {
  splitId: string;
  next: number;
  end: number;
}

/** Splits of `size` numbers each: split k holds k*size .. k*size+size-1. */
class Ranges extends SplitSource<number, RangeSplit> {
  constructor(
    readonly boundedness: 'BOUNDED' | 'CONTINUOUS_UNBOUNDED',
    private readonly splits: number,
    private readonly size = 10,
  ) {
    super();
  }
  createSplits(): RangeSplit[] {
    return Array.from({ length: this.splits }, (_, k) => ({
      splitId: `r${k}`,
      next: k * this.size,
      end: (k + 1) * this.size,
    }));
  }
  createSplitReader(split: RangeSplit): SplitReader<number, RangeSplit> {
    const s = { ...split };
    return {
      fetch(out: SplitReaderOutput<number>, budget: number): InputStatus {
        while (budget-- > 0 && s.next < s.end) out.collect(s.next++, 1000 + s.next);
        return s.next < s.end ? InputStatus.MORE_AVAILABLE : InputStatus.END_OF_INPUT;
      },
      isAvailable: () => Promise.resolve(),
      snapshot: () => ({ ...s }),
    };
  }
}

const info = (subtaskIndex: number, parallelism: number): TaskInfo => ({
  jobId: 'j',
  taskName: 't',
  subtaskIndex,
  parallelism,
  attemptNumber: 0,
  workingDirectory: process.cwd(),
});

function drain(reader: SourceReader<number>, output: ReaderOutput<number>, maxPolls = 1000): InputStatus {
  let status = InputStatus.MORE_AVAILABLE;
  for (let i = 0; i < maxPolls && status === InputStatus.MORE_AVAILABLE; i++)
    status = reader.pollNext(output);
  return status;
}

describe('SplitSource', () => {
  test('split k goes to subtask k % parallelism; every record once across the subtasks', async () => {
    const source = new Ranges('BOUNDED', 5);
    const seen: number[] = [];
    for (let i = 0; i < 2; i++) {
      const reader = source.createReader(info(i, 2));
      await reader.start?.();
      const mine: number[] = [];
      assert.equal(drain(reader, { collect: (r) => mine.push(r) }), InputStatus.END_OF_INPUT);
      // subtask 0: splits 0, 2, 4; subtask 1: splits 1, 3
      const splits = [...new Set(mine.map((r) => Math.floor(r / 10)))].sort();
      assert.deepEqual(splits, i === 0 ? [0, 2, 4] : [1, 3]);
      seen.push(...mine);
    }
    assert.deepEqual(
      seen.sort((a, b) => a - b),
      Array.from({ length: 50 }, (_, k) => k),
    );
  });

  test('a snapshot keeps every unfinished split with its position; a reader restored from it goes on from there', () => {
    const source = new Ranges('BOUNDED', 2, 1000);
    const reader = source.createReader(info(0, 1));
    const first: number[] = [];
    // one poll reads part of each split (the budget is shared between them)
    assert.equal(reader.pollNext({ collect: (r) => first.push(r) }), InputStatus.MORE_AVAILABLE);
    const snapshot = reader.snapshotState!() as RangeSplit[];
    assert.deepEqual(
      snapshot.map((s) => s.splitId),
      ['r0', 'r1'],
    );
    assert.ok(
      snapshot.every((s) => s.next > s.end - 1000 && s.next < s.end),
      'both splits part-read',
    );
    const restored = source.createReader(info(0, 1), snapshot);
    const rest: number[] = [];
    drain(restored, { collect: (r) => rest.push(r) });
    assert.deepEqual(
      [...first, ...rest].sort((a, b) => a - b),
      Array.from({ length: 2000 }, (_, k) => k),
    );
  });

  test('the splits are polled in turn: each one emits before any emits twice its share', () => {
    const source = new Ranges('BOUNDED', 3);
    const reader = source.createReader(info(0, 1));
    const order: number[] = [];
    drain(reader, { collect: (r) => order.push(Math.floor(r / 10)) });
    assert.deepEqual([...new Set(order.slice(0, 30))].sort(), [0, 1, 2]);
  });

  test('a finished split is dropped from snapshots; a bounded reader without splits ends, an unbounded one idles', async () => {
    const bounded = new Ranges('BOUNDED', 1).createReader(info(0, 1));
    drain(bounded, { collect: () => {} });
    assert.deepEqual(bounded.snapshotState!(), []);
    const empty = new Ranges('BOUNDED', 1).createReader(info(1, 2));
    assert.equal(empty.pollNext({ collect: () => {} }), InputStatus.END_OF_INPUT);
    const idle = new Ranges('CONTINUOUS_UNBOUNDED', 1).createReader(info(1, 2));
    assert.equal(idle.pollNext({ collect: () => {} }), InputStatus.NOTHING_AVAILABLE);
    const waited = await Promise.race([
      idle.isAvailable().then(() => 'available'),
      new Promise((r) => setTimeout(() => r('still idle'), 50)),
    ]);
    assert.equal(waited, 'still idle');
  });

  test('a runtime that offers per-split outputs gets each split through its own, with timestamps', () => {
    const reader = new Ranges('BOUNDED', 2).createReader(info(0, 1));
    const bySplit = new Map<string, Array<[number, number | undefined]>>();
    const released: string[] = [];
    const output: SplitReaderOutput<number> = {
      collect: () => assert.fail('records go through the split outputs'),
      createOutputForSplit: (id) => {
        const l: Array<[number, number | undefined]> = [];
        bySplit.set(id, l);
        return { collect: (r: number, ts?: number) => l.push([r, ts]) };
      },
      releaseOutputForSplit: (id) => released.push(id),
    };
    drain(reader, output);
    assert.deepEqual([...bySplit.keys()].sort(), ['r0', 'r1']);
    assert.deepEqual(
      bySplit.get('r1')!.map(([r]) => r),
      Array.from({ length: 10 }, (_, k) => 10 + k),
    );
    assert.equal(bySplit.get('r0')![0]![1], 1001, 'the split reader’s timestamp reaches the output');
    assert.deepEqual(released.sort(), ['r0', 'r1']);
  });
});
