import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { encodeRecords, type ChannelEvent } from '../../packages/core/src/index.js';
import { BufferHeader } from '../../packages/taskmanager/src/network/buffer-format.js';
import { InputGate } from '../../packages/taskmanager/src/network/input-gate.js';
import { CheckpointBarrierHandler } from '../../packages/taskmanager/src/task/checkpoint-barrier-handler.js';

type Barrier = Extract<ChannelEvent, { type: 'CheckpointBarrier' }>;
const barrier = (checkpointId: number): Barrier => ({
  type: 'CheckpointBarrier',
  checkpointId,
  timestamp: 0,
});

/** A network buffer holding one record (see network/buffer-format.ts). */
const recordsBuffer = (record: unknown): Uint8Array =>
  Buffer.concat([Buffer.from([BufferHeader.RECORDS]), encodeRecords([record])]);

/** An aligning handler over two channels, each holding one buffer, recording what it decided. */
function setUp(): {
  gate: InputGate;
  handler: CheckpointBarrierHandler;
  aligned: number[];
  canceled: number[];
  readable(): number[];
} {
  const gate = new InputGate(2, () => {});
  const aligned: number[] = [];
  const canceled: number[] = [];
  const handler = new CheckpointBarrierHandler(
    gate,
    true,
    (b) => aligned.push(b.checkpointId),
    (id) => canceled.push(id),
  );
  const readable = (): number[] => {
    // which channels a read would take a frame from, refilled so the state is unchanged
    const out: number[] = [];
    while (gate.pollNext({ onRecords: (_r, ch) => out.push(ch), onEvent: () => {} }));
    for (const ch of out) gate.onFrame(ch, 'buffer', recordsBuffer(ch));
    return out.sort();
  };
  for (const ch of [0, 1]) gate.onFrame(ch, 'buffer', recordsBuffer(ch));
  return { gate, handler, aligned, canceled, readable };
}

describe('CheckpointBarrierHandler with cancel markers', () => {
  test('a cancel marker releases the alignment, is forwarded once, and a late barrier is ignored', () => {
    const { handler, aligned, canceled, readable } = setUp();
    handler.onBarrier(barrier(5), 0);
    assert.deepEqual(readable(), [1], 'channel 0 is blocked while aligning');
    handler.onCancelMarker(5);
    assert.deepEqual(canceled, [5]);
    assert.equal(handler.aligning, undefined);
    assert.deepEqual(readable(), [0, 1], 'every channel is readable again');
    handler.onCancelMarker(5);
    assert.deepEqual(canceled, [5], 'forwarded once');
    handler.onBarrier(barrier(5), 1);
    assert.deepEqual(aligned, [], 'the late barrier of the canceled checkpoint is ignored');
    assert.deepEqual(readable(), [0, 1], 'and blocks nothing');
    handler.onBarrier(barrier(6), 0);
    handler.onBarrier(barrier(6), 1);
    assert.deepEqual(aligned, [6], 'the next checkpoint aligns normally');
  });

  test('a marker of a checkpoint whose barriers have not come yet cancels it ahead', () => {
    const { handler, aligned, canceled, readable } = setUp();
    handler.onCancelMarker(7);
    assert.deepEqual(canceled, [7]);
    handler.onBarrier(barrier(7), 0);
    handler.onBarrier(barrier(7), 1);
    assert.deepEqual(aligned, []);
    assert.deepEqual(readable(), [0, 1]);
  });

  test('a newer barrier supersedes an alignment; an older marker after it is ignored', () => {
    const { handler, aligned, canceled, readable } = setUp();
    handler.onBarrier(barrier(5), 0);
    handler.onBarrier(barrier(6), 1);
    assert.equal(handler.aligning, 6);
    assert.deepEqual(readable(), [0], 'channel 0 released from 5, channel 1 blocked for 6');
    handler.onCancelMarker(5);
    assert.deepEqual(canceled, [], 'a marker of the superseded checkpoint changes nothing');
    assert.equal(handler.aligning, 6);
    handler.onBarrier(barrier(6), 0);
    assert.deepEqual(aligned, [6]);
  });

  test('a newer marker supersedes an alignment of an older checkpoint', () => {
    const { handler, canceled, readable } = setUp();
    handler.onBarrier(barrier(5), 0);
    handler.onCancelMarker(6);
    assert.deepEqual(canceled, [6]);
    assert.deepEqual(readable(), [0, 1]);
    handler.onBarrier(barrier(5), 1);
    assert.equal(handler.aligning, undefined, 'the older barrier is late now');
  });

  test('an abort from the JobManager releases the alignment, or cancels the checkpoint when its barrier comes', () => {
    const { handler, aligned, canceled, readable } = setUp();
    handler.onBarrier(barrier(5), 0);
    handler.abort(5);
    assert.deepEqual(canceled, [5]);
    assert.deepEqual(readable(), [0, 1]);
    handler.abort(8);
    assert.deepEqual(canceled, [5], 'nothing to release yet');
    handler.onBarrier(barrier(8), 1);
    assert.deepEqual(canceled, [5, 8], 'its first barrier cancels it and is forwarded as a marker');
    handler.onBarrier(barrier(8), 0);
    assert.deepEqual(aligned, []);
    assert.deepEqual(readable(), [0, 1]);
    handler.abort(8);
    assert.deepEqual(canceled, [5, 8], 'an abort of a checkpoint given up already changes nothing');
  });

  test('an abort after the alignment finished changes nothing', () => {
    const { handler, aligned, canceled } = setUp();
    handler.onBarrier(barrier(5), 0);
    handler.onBarrier(barrier(5), 1);
    handler.abort(5);
    assert.deepEqual(aligned, [5]);
    assert.deepEqual(canceled, []);
  });
});
