import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  InputStatus,
  SplitSource,
  type SourceReader,
  type SplitEnumerator,
  type SplitEnumeratorContext,
  type SplitReader,
  type SplitReaderOutput,
  type SplitRequester,
  type TaskInfo,
} from '../../packages/api/src/index.js';
import { createLogger } from '../../packages/core/src/index.js';
import {
  SourceCoordinator,
  type SourceCoordinatorState,
} from '../../packages/jobmanager/src/source-coordinator.js';

interface RangeSplit {
  splitId: string;
  next: number;
  end: number;
}

/** `splits` ranges of 10 numbers, handed out one per request by an enumerator (a file source's shape). */
class PulledRanges extends SplitSource<number, RangeSplit> {
  readonly boundedness = 'BOUNDED' as const;
  constructor(private readonly splits: number) {
    super();
  }
  createSplits(): RangeSplit[] {
    return Array.from({ length: this.splits }, (_, k) => ({
      splitId: `r${k}`,
      next: k * 10,
      end: k * 10 + 10,
    }));
  }
  override createEnumerator(ctx: SplitEnumeratorContext<RangeSplit>, restored?: unknown) {
    const remaining = (restored as RangeSplit[] | undefined) ?? this.createSplits();
    const enumerator: SplitEnumerator<RangeSplit, RangeSplit[]> = {
      start: () => {},
      addReader: () => {},
      handleSplitRequest: (subtask) => {
        const s = remaining.shift();
        if (s) ctx.assignSplit(s, subtask);
        else ctx.signalNoMoreSplits(subtask);
      },
      addSplitsBack: (splits) => remaining.unshift(...splits),
      snapshotState: () => remaining.map((s) => ({ ...s })),
    };
    return enumerator;
  }
  createSplitReader(split: RangeSplit): SplitReader<number, RangeSplit> {
    const s = { ...split };
    return {
      fetch(out: SplitReaderOutput<number>, budget: number): InputStatus {
        while (budget-- > 0 && s.next < s.end) out.collect(s.next++);
        return s.next < s.end ? InputStatus.MORE_AVAILABLE : InputStatus.END_OF_INPUT;
      },
      isAvailable: () => Promise.resolve(),
      snapshot: () => ({ ...s }),
    };
  }
}

const log = createLogger('test', {}, 'silent');
const info = (subtaskIndex: number, parallelism: number): TaskInfo => ({
  jobId: 'j',
  taskName: 't',
  subtaskIndex,
  parallelism,
  attemptNumber: 0,
  workingDirectory: process.cwd(),
});

/** A requester that reaches the coordinator in-process, after a macrotask (as over the network). */
function requester(
  c: SourceCoordinator,
  executionId: string,
  subtask: number,
): SplitRequester & { calls: number } {
  const r = {
    calls: 0,
    request: (last: number, wantMore: boolean) => {
      r.calls++;
      return new Promise<{ splits: unknown[]; noMoreSplits: boolean }>((resolve, reject) =>
        setImmediate(() => {
          try {
            resolve(c.request(executionId, subtask, last, wantMore));
          } catch (err) {
            reject(err as Error);
          }
        }),
      );
    },
  };
  return r;
}

/** Polls until the reader ends, waiting on isAvailable in between; gives what it emitted. */
async function runToEnd(reader: SourceReader<number>, out: number[]): Promise<void> {
  for (let i = 0; i < 10_000; i++) {
    const status = reader.pollNext({ collect: (r) => out.push(r) });
    if (status === InputStatus.END_OF_INPUT) return;
    if (status === InputStatus.NOTHING_AVAILABLE) await reader.isAvailable();
  }
  assert.fail('the reader did not end');
}

const range = (n: number) => Array.from({ length: n }, (_, k) => k);

describe('split enumerator (SourceCoordinator + coordinated reader)', () => {
  test('readers ask for splits one at a time; every record once; both end on no more splits', async () => {
    const source = new PulledRanges(7);
    const c = new SourceCoordinator(source as never, 'op', 'ranges', 2, log, assert.fail);
    await c.start(undefined);
    const out: number[] = [];
    await Promise.all(
      [0, 1].map(async (i) => {
        const reader = source.createReader(info(i, 2), undefined, requester(c, `e${i}`, i));
        await reader.start?.();
        await runToEnd(reader, out);
      }),
    );
    assert.deepEqual(
      out.sort((a, b) => a - b),
      range(70),
    );
  });

  test('an assignment after the snapshot of checkpoint c waits for barrier c; untaken ones are in the snapshot and come back on restore', async () => {
    const source = new PulledRanges(3);
    const c = new SourceCoordinator(source as never, 'op', 'ranges', 1, log, assert.fail);
    await c.start(undefined);
    // r0 assigned and taken before any checkpoint
    assert.deepEqual(
      c.request('e0', 0, 0, true).splits.map((s) => s.splitId),
      ['r0'],
    );
    // r1 assigned, then checkpoint 5 is snapshotted before the reader took it
    c.request('e0', 0, 0, true);
    // the reader asked (wantMore) and got r1 at once: assign r2 without the reader taking it
    const state = c.snapshot(5);
    assert.deepEqual(
      (state.enumerator as RangeSplit[]).map((s) => s.splitId),
      ['r2'],
    );
    assert.deepEqual(state.assigned, {});
    const c2 = new SourceCoordinator(source as never, 'op', 'ranges', 1, log, assert.fail);
    await c2.start(undefined);
    c2.request('e0', 0, 0, true); // takes r0
    c2.snapshot(3);
    // assigned after snapshot 3: a reader still before barrier 3 must not get it
    (c2 as unknown as { enumerator: SplitEnumerator<RangeSplit, unknown> }).enumerator.handleSplitRequest(0);
    assert.deepEqual(c2.request('e0', 0, 2, false).splits, []);
    // checkpoint 4 snapshotted while r1 waits: it is in that state, and given only after barrier 4
    const s4: SourceCoordinatorState = c2.snapshot(4);
    assert.deepEqual(
      s4.assigned['0']!.map((s) => (s as RangeSplit).splitId),
      ['r1'],
    );
    assert.deepEqual(c2.request('e0', 0, 3, false).splits, []);
    assert.deepEqual(
      c2.request('e0', 0, 4, false).splits.map((s) => s.splitId),
      ['r1'],
    );
    // restored from checkpoint 4 (reader held r0 then): r1 goes back to the enumerator, r2 stays there
    const c3 = new SourceCoordinator(source as never, 'op', 'ranges', 2, log, assert.fail);
    await c3.start(s4);
    const got = [
      ...c3.request('x0', 0, 0, true).splits,
      ...c3.request('x1', 1, 0, true).splits,
      ...c3.request('x0', 0, 0, true).splits,
    ].map((s) => s.splitId);
    assert.deepEqual(got.sort(), ['r1', 'r2']);
    assert.equal(c3.request('x1', 1, 0, true).noMoreSplits, true);
  });

  test('a checkpoint waits for the split request under way, so its splits are in the snapshot', async () => {
    const source = new PulledRanges(2);
    const c = new SourceCoordinator(source as never, 'op', 'ranges', 1, log, assert.fail);
    await c.start(undefined);
    const reader = source.createReader(info(0, 1), undefined, requester(c, 'e0', 0));
    await reader.start?.();
    const out: number[] = [];
    // drain r0: the reader asks for the next split
    while (out.length < 10) reader.pollNext({ collect: (r) => out.push(r) });
    reader.pollNext({ collect: (r) => out.push(r) });
    const ready = reader.checkpointReady?.();
    assert.ok(ready, 'a request is under way');
    await ready;
    assert.deepEqual(
      reader.snapshotState!(1).map((s) => (s as RangeSplit).splitId),
      ['r1'],
    );
  });

  test('a split held back for a barrier is taken as soon as the reader emitted that barrier', async () => {
    const source = new PulledRanges(2);
    const c = new SourceCoordinator(source as never, 'op', 'ranges', 1, log, assert.fail);
    await c.start(undefined);
    const reader = source.createReader(info(0, 1), undefined, requester(c, 'e0', 0));
    await reader.start?.();
    const out: number[] = [];
    while (out.length < 10) reader.pollNext({ collect: (r) => out.push(r) });
    // checkpoint 1 is triggered on the JobManager before the reader asks for its next split
    c.snapshot(1);
    reader.pollNext({ collect: (r) => out.push(r) });
    await reader.checkpointReady?.();
    assert.equal(out.length, 10, 'r1 waits for barrier 1');
    const emitted = Date.now();
    reader.snapshotState!(1);
    while (out.length < 20) {
      if (reader.pollNext({ collect: (r) => out.push(r) }) === InputStatus.NOTHING_AVAILABLE)
        await reader.isAvailable();
    }
    const waited = Date.now() - emitted;
    assert.ok(
      waited < 300,
      `r1 was taken ${waited} ms after the barrier (the periodic request comes after 1 s)`,
    );
  });

  test('an enumerator assigning to a subtask that does not exist fails naming the source', async () => {
    const source = new PulledRanges(1);
    const c = new SourceCoordinator(source as never, 'op', 'ranges', 2, log, assert.fail);
    await c.start(undefined);
    assert.throws(
      () => c.assignSplit({ splitId: 'x' }, 2),
      /source 'ranges' assigned split 'x' to subtask 2; subtasks are 0\.\.1/,
    );
  });
});
