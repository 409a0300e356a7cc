import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { StorageError } from '../../packages/core/src/index.js';
import { decodeEvent, encodeEvent, encodeRecords, type ChannelEvent } from '../../packages/core/src/index.js';
import { CheckpointConfig } from '../../packages/api/src/checkpoint-config.js';
import { DEFAULT_CHECKPOINT_SETTINGS, unalignedCheckpointsIgnored } from '../../packages/api/src/internal.js';
import { BufferHeader } from '../../packages/taskmanager/src/network/buffer-format.js';
import { InputGate } from '../../packages/taskmanager/src/network/input-gate.js';
import { ResultPartition } from '../../packages/taskmanager/src/network/result-partition.js';
import {
  decodeChannelState,
  encodeChannelState,
  type ChannelStateEntry,
} from '../../packages/taskmanager/src/task/channel-state.js';
import { ChannelStateCapture } from '../../packages/taskmanager/src/task/channel-state-capture.js';
import { CheckpointBarrierHandler } from '../../packages/taskmanager/src/task/checkpoint-barrier-handler.js';

type Barrier = Extract<ChannelEvent, { type: 'CheckpointBarrier' }>;
const barrier = (checkpointId: number, isSavepoint = false): Barrier => ({
  type: 'CheckpointBarrier',
  checkpointId,
  timestamp: 0,
  ...(isSavepoint ? { isSavepoint } : {}),
});
const recordsBuffer = (...records: unknown[]): Uint8Array =>
  Buffer.concat([Buffer.from([BufferHeader.RECORDS]), encodeRecords(records)]);

/** Every record a gate yields, in the order it yields them, with their channel. */
function drain(gate: InputGate): Array<[number, unknown]> {
  const out: Array<[number, unknown]> = [];
  while (gate.pollNext({ onRecords: (rs, ch) => rs.forEach((r) => out.push([ch, r])), onEvent: () => {} }));
  return out;
}

describe('channel state file format', () => {
  const entries: ChannelStateEntry[] = [
    { side: 'input', partition: 0, index: 0, kind: 'buffer', bytes: recordsBuffer(1, 2, 3) },
    {
      side: 'input',
      partition: 0,
      index: 3,
      kind: 'event',
      bytes: encodeEvent({ type: 'Watermark', timestamp: 7 }),
    },
    { side: 'output', partition: 1, index: 70_000, kind: 'buffer', bytes: new Uint8Array(0) },
    { side: 'output', partition: 2, index: 1, kind: 'buffer', bytes: new Uint8Array(100_000).fill(9) },
  ];

  test('round trip keeps side, partition, index, kind and bytes in order', () => {
    const back = decodeChannelState(encodeChannelState(entries), 'f');
    assert.deepEqual(
      back.map((e) => ({ ...e, bytes: Buffer.from(e.bytes).toString('hex') })),
      entries.map((e) => ({ ...e, bytes: Buffer.from(e.bytes).toString('hex') })),
    );
    assert.deepEqual(decodeChannelState(encodeChannelState([]), 'f'), []);
  });

  test('decoded frames own their bytes (an output frame is transferred when sent)', () => {
    const back = decodeChannelState(encodeChannelState(entries), 'f');
    assert.notEqual(back[0]!.bytes.buffer, back[3]!.bytes.buffer);
    assert.equal(back[3]!.bytes.byteOffset, 0);
  });

  test('damaged files are CORRUPT storage errors naming the file', () => {
    const good = encodeChannelState(entries);
    const cases: Array<[Uint8Array, RegExp]> = [
      [Buffer.from('WCS2'), /does not start with WCS1/],
      [good.subarray(0, good.length - 1), /longer than the file/],
      [good.subarray(0, 10), /truncated entry header/],
      [
        Buffer.concat([Buffer.from('WCS1'), Buffer.from([7, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0])]),
        /unknown entry type/,
      ],
    ];
    for (const [data, why] of cases)
      assert.throws(
        () => decodeChannelState(data, 'chk-3/channel-state/1-x'),
        // by name: the module under test loads @weir/core, a second instance of StorageError
        (e: unknown) =>
          (e as StorageError).name === 'StorageError' &&
          (e as StorageError).reason === 'CORRUPT' &&
          /chk-3\/channel-state\/1-x/.test((e as Error).message) &&
          why.test((e as Error).message),
      );
  });
});

describe('a barrier overtaking output (ResultPartition.overtake)', () => {
  test('goes out before queued buffers without credit; the overtaken frames are returned as copies and still sent after it', () => {
    const sent: Array<{ sp: number; kind: string; bytes: Uint8Array }> = [];
    const rp = new ResultPartition({
      partitionId: 'p',
      numberOfSubpartitions: 2,
      maxBacklog: 4,
      bufferSize: 64,
      send: (_p, sp, kind, bytes) => sent.push({ sp, kind, bytes }),
      onAvailable: () => {},
    });
    rp.onRequest(0, 1);
    rp.onRequest(1, 0);
    for (let i = 0; i < 40; i++) rp.emit(i % 2, `record-${i}`);
    const before = sent.length;
    assert.equal(before, 1, 'one credit: one buffer of subpartition 0 went out');
    assert.ok(rp.hasUnsentBuffers());
    const overtaken = rp.overtake(barrier(4));
    // the barrier is the next frame of each subpartition, sent without credit
    assert.deepEqual(
      sent.slice(before).map((f) => [f.sp, f.kind, decodeEvent(f.bytes).type]),
      [
        [0, 'event', 'CheckpointBarrier'],
        [1, 'event', 'CheckpointBarrier'],
      ],
    );
    assert.ok(overtaken.filter((f) => f.subpartition === 0).length > 0);
    assert.ok(overtaken.filter((f) => f.subpartition === 1).length > 0);
    // the overtaken records are exactly what follows the barrier once credit comes
    rp.onCredit(0, 100);
    rp.onCredit(1, 100);
    const after = sent.slice(before + 2);
    for (const s of [0, 1])
      assert.deepEqual(
        after.filter((f) => f.sp === s).map((f) => Buffer.from(f.bytes).toString('hex')),
        overtaken.filter((f) => f.subpartition === s).map((f) => Buffer.from(f.bytes).toString('hex')),
      );
    assert.ok(!rp.hasUnsentBuffers());
  });

  test('restored output frames go out before new records', () => {
    const sent: string[] = [];
    const rp = new ResultPartition({
      partitionId: 'p',
      numberOfSubpartitions: 1,
      maxBacklog: 4,
      send: (_p, _s, _k, bytes) => sent.push(Buffer.from(bytes).toString('hex')),
      onAvailable: () => {},
    });
    const restored = recordsBuffer('old');
    rp.restoreFrame(0, 'buffer', restored);
    rp.emit(0, 'new');
    rp.flushAll();
    rp.onRequest(0, 10);
    assert.equal(sent[0], Buffer.from(restored).toString('hex'));
    assert.equal(sent.length, 2);
    assert.throws(() => rp.restoreFrame(3, 'buffer', restored), /subpartition 3.*has 1/);
  });
});

describe('input channel state (InputGate)', () => {
  test('in-flight frames include a record still arriving in fragments; restored frames come first and earn no credit', () => {
    const credits: Array<[number, number]> = [];
    const gate = new InputGate(2, () => {});
    // a record in two fragments: the first was read, the second is queued
    const record = 'a record in two fragments';
    const encoded = Buffer.from(encodeRecords([record])).subarray(1); // the value without the array header
    const first = Buffer.concat([
      Buffer.from([BufferHeader.FIRST_FRAGMENT]),
      Buffer.alloc(4),
      encoded.subarray(0, 6),
    ]);
    first.writeUInt32BE(encoded.length, 1);
    const more = Buffer.concat([Buffer.from([BufferHeader.MORE_FRAGMENT]), encoded.subarray(6)]);
    gate.onFrame(1, 'buffer', first);
    assert.deepEqual(drain(gate), []);
    gate.onFrame(1, 'buffer', more);
    gate.onFrame(1, 'buffer', recordsBuffer('queued'));
    const inflight = gate.inFlight(1);
    assert.equal(inflight.length, 3, 'the part read so far, then the two queued frames');
    // replayed into the gate of a restored task, ahead of what arrives over the network
    const restored = new InputGate(2, (ch, c) => credits.push([ch, c]));
    for (const f of inflight) restored.restoreFrame(1, f.kind, f.bytes);
    restored.onFrame(1, 'buffer', recordsBuffer('new'));
    assert.deepEqual(
      drain(restored).map(([, r]) => r),
      [record, 'queued', 'new'],
    );
    restored.flushCredits();
    assert.deepEqual(credits, [[1, 1]], 'only the frame that came over the network earns credit');
  });

  test('recording keeps what arrives until stopped', () => {
    const gate = new InputGate(1, () => {});
    gate.startRecording(0);
    gate.onFrame(0, 'buffer', recordsBuffer(1));
    gate.onFrame(0, 'event', encodeEvent({ type: 'Watermark', timestamp: 1 }));
    const recorded = gate.stopRecording(0);
    gate.onFrame(0, 'buffer', recordsBuffer(2));
    assert.deepEqual(
      recorded.map((f) => f.kind),
      ['buffer', 'event'],
    );
    assert.deepEqual(gate.stopRecording(0), []);
  });
});

describe('ChannelStateCapture', () => {
  test('keeps buffers and watermarks, drops barriers and end events, completes once every channel did', async () => {
    const c = new ChannelStateCapture(3, 2);
    c.addInput(0, [
      { kind: 'buffer', bytes: recordsBuffer(1) },
      { kind: 'event', bytes: encodeEvent({ type: 'EndOfData' }) },
      { kind: 'event', bytes: encodeEvent(barrier(2)) },
      { kind: 'event', bytes: encodeEvent({ type: 'WatermarkStatus', idle: true }) },
    ]);
    c.complete(0);
    c.complete(0, [{ kind: 'buffer', bytes: recordsBuffer('ignored: channel 0 already complete') }]);
    let settled: boolean | undefined;
    void c.done.then((v) => (settled = v));
    await new Promise((r) => setImmediate(r));
    assert.equal(settled, undefined, 'channel 1 is still open');
    c.complete(1, [{ kind: 'buffer', bytes: recordsBuffer(2) }]);
    assert.equal(await c.done, true);
    assert.deepEqual(
      c.entries().map((e) => [e.side, e.index, e.kind]),
      [
        ['input', 0, 'buffer'],
        ['input', 0, 'event'],
        ['input', 1, 'buffer'],
      ],
    );
    const canceled = new ChannelStateCapture(4, 1);
    canceled.cancel();
    assert.equal(await canceled.done, false);
  });
});

describe('CheckpointBarrierHandler, unaligned', () => {
  function setUp(alignedTimeoutMs = 0): {
    gate: InputGate;
    handler: CheckpointBarrierHandler;
    log: string[];
  } {
    const gate = new InputGate(2, () => {});
    const log: string[] = [];
    const handler = new CheckpointBarrierHandler(
      gate,
      true,
      (b) => log.push(`aligned ${b.checkpointId}`),
      (id) => log.push(`canceled ${id}`),
      {
        alignedTimeoutMs,
        start: (b, _ms, passed) => log.push(`unaligned ${b.checkpointId} passed [${passed.join(',')}]`),
        channelDone: (id, ch) => log.push(`done ${id} ${ch}`),
      },
    );
    return { gate, handler, log };
  }

  test('the first barrier starts the checkpoint at once, overtaking queued records; nothing is blocked', () => {
    const { gate, handler, log } = setUp();
    gate.onFrame(0, 'buffer', recordsBuffer('a'));
    gate.onFrame(1, 'buffer', recordsBuffer('b'));
    assert.equal(handler.onPriorityEvent(encodeEvent(barrier(1)), 0), true, 'taken, not queued');
    assert.deepEqual(log, ['unaligned 1 passed []', 'done 1 0']);
    assert.deepEqual(drain(gate).length, 2, 'both channels stay readable');
    assert.equal(handler.onPriorityEvent(encodeEvent(barrier(1)), 1), true);
    assert.deepEqual(log.slice(2), ['done 1 1']);
    assert.equal(handler.aligning, undefined);
  });

  test('savepoint barriers stay in order and align', () => {
    const { handler, log } = setUp();
    assert.equal(handler.onPriorityEvent(encodeEvent(barrier(2, true)), 0), false);
    handler.onBarrier(barrier(2, true), 0);
    handler.onBarrier(barrier(2, true), 1);
    assert.deepEqual(log, ['aligned 2']);
  });

  test('a cancel marker overtakes too and ends the capture', () => {
    const { handler, log } = setUp();
    handler.onPriorityEvent(encodeEvent(barrier(3)), 0);
    assert.equal(
      handler.onPriorityEvent(encodeEvent({ type: 'CancelCheckpointMarker', checkpointId: 3 }), 1),
      true,
    );
    assert.deepEqual(log, ['unaligned 3 passed []', 'done 3 0', 'canceled 3']);
  });

  test('a finished channel counts as done', () => {
    const { gate, handler, log } = setUp();
    gate.onFrame(1, 'event', encodeEvent({ type: 'EndOfPartition' }));
    drain(gate);
    handler.onPriorityEvent(encodeEvent(barrier(4)), 0);
    assert.deepEqual(log, ['unaligned 4 passed []', 'done 4 1', 'done 4 0']);
  });

  test('with an aligned timeout: aligns first, then turns unaligned with the passed channels', async () => {
    const { gate, handler, log } = setUp(30);
    assert.equal(handler.onPriorityEvent(encodeEvent(barrier(5)), 0), false, 'in order while aligning');
    handler.onBarrier(barrier(5), 0);
    gate.onFrame(0, 'buffer', recordsBuffer('after the barrier'));
    gate.onFrame(1, 'buffer', recordsBuffer('before the barrier'));
    assert.deepEqual(drain(gate), [[1, 'before the barrier']], 'channel 0 is blocked');
    await new Promise((r) => setTimeout(r, 60));
    assert.deepEqual(log, ['unaligned 5 passed [0]']);
    assert.deepEqual(drain(gate), [[0, 'after the barrier']], 'unblocked when it turned unaligned');
    // the late barrier ends channel 1's recording on arrival; read later, it changes nothing
    assert.equal(handler.onPriorityEvent(encodeEvent(barrier(5)), 1), false);
    assert.deepEqual(log.slice(1), ['done 5 1']);
    handler.onBarrier(barrier(5), 1);
    assert.deepEqual(log.slice(2), []);
    handler.close();
  });

  test('with an aligned timeout: the timeout runs from a barrier arriving behind queued records, which become channel state', async () => {
    const { gate, handler, log } = setUp(30);
    gate.onFrame(0, 'buffer', recordsBuffer('queued before the barrier'));
    assert.equal(handler.onPriorityEvent(encodeEvent(barrier(7)), 0), false);
    gate.onFrame(0, 'event', encodeEvent(barrier(7)));
    assert.equal(handler.aligning, 7, 'started on arrival, before the barrier is read');
    await new Promise((r) => setTimeout(r, 60));
    assert.deepEqual(log, ['unaligned 7 passed []'], 'unaligned without any barrier read');
    // the queued barrier read later ends channel 0; channel 1's comes later still
    drain(gate);
    handler.onBarrier(barrier(7), 0);
    assert.deepEqual(log.slice(1), ['done 7 0']);
    handler.onPriorityEvent(encodeEvent(barrier(7)), 1);
    assert.deepEqual(log.slice(2), ['done 7 1']);
    assert.equal(handler.aligning, undefined);
  });

  test('with an aligned timeout: a checkpoint that aligns in time stays aligned', async () => {
    const { handler, log } = setUp(30);
    handler.onBarrier(barrier(6), 0);
    handler.onBarrier(barrier(6), 1);
    await new Promise((r) => setTimeout(r, 60));
    assert.deepEqual(log, ['aligned 6']);
  });
});

describe('unaligned checkpoint settings', () => {
  test('the API and the bad-input message', () => {
    const c = new CheckpointConfig();
    assert.equal(c.isUnalignedCheckpointsEnabled(), false);
    c.enableUnalignedCheckpoints().setAlignedCheckpointTimeout(250);
    assert.deepEqual(c.explicitSettings(), { unaligned: true, alignedCheckpointTimeoutMs: 250 });
    assert.throws(
      () => c.setAlignedCheckpointTimeout(-1),
      /Aligned checkpoint timeout must be a non-negative number/,
    );
    const s = { ...DEFAULT_CHECKPOINT_SETTINGS, unaligned: true };
    assert.equal(unalignedCheckpointsIgnored(s), undefined);
    assert.match(
      unalignedCheckpointsIgnored({ ...s, mode: 'AT_LEAST_ONCE' })!,
      /AT_LEAST_ONCE.*checkpoints are taken at-least-once without channel state.*EXACTLY_ONCE/s,
    );
  });
});
