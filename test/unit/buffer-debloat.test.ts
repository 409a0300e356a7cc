import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  BufferDebloater,
  DEFAULT_BUFFER_DEBLOAT,
  type BufferDebloatSettings,
} from '../../packages/taskmanager/src/network/buffer-debloater.js';
import type { Worker } from 'node:worker_threads';
import { ExchangeRouter } from '../../packages/taskmanager/src/network/exchange-router.js';
import { InputGate } from '../../packages/taskmanager/src/network/input-gate.js';
import { ResultPartition } from '../../packages/taskmanager/src/network/result-partition.js';

const settings = (over: Partial<BufferDebloatSettings> = {}): BufferDebloatSettings => ({
  ...DEFAULT_BUFFER_DEBLOAT,
  targetMs: 100,
  samples: 1,
  thresholdPercentages: 0,
  minBufferSize: 32,
  maxBufferSize: 32 * 1024,
  ...over,
});

describe('buffer debloater arithmetic', () => {
  test('the buffer size makes what is queued take the target time: throughput x target / buffers', () => {
    // 10 buffers per channel, 2 active channels; 200 ms busy, 40,000 bytes -> 200,000 bytes/s
    const d = new BufferDebloater(settings(), 10, 0);
    assert.equal(d.bufferSize, 32, 'starts at the minimum');
    assert.equal(d.recalculate(200, 40_000, 2), 1000); // 200,000 * 0.1 / 20
    assert.equal(d.throughput, 200_000);
    assert.equal(d.estimatedTimeToConsumeMs(2), 100);
  });

  test('bounded by the minimum and the maximum buffer size', () => {
    const d = new BufferDebloater(settings(), 10, 0);
    assert.equal(d.recalculate(200, 100_000_000, 1), 32 * 1024, 'fast: full-size buffers');
    assert.equal(d.recalculate(400, 10, 1), 32, 'slow: the minimum');
  });

  test('time waiting for input is not counted: a starved fast task keeps large buffers', () => {
    const d = new BufferDebloater(settings(), 10, 0);
    d.idle(0);
    d.busy(190); // 10 ms of work in the 200 ms period
    // 40,000 bytes in 10 busy ms: 4 MB/s, not 200 kB/s
    assert.equal(d.recalculate(200, 40_000, 1), 32 * 1024);
    assert.equal(d.throughput, 4_000_000);
    // still idle at the end of a period: the idle part up to now is left out, and the next period starts idle
    const e = new BufferDebloater(settings(), 10, 0);
    e.idle(100);
    assert.equal(e.recalculate(200, 20_000, 1), 2000); // 20,000 bytes in 100 ms: 200 kB/s -> 20,000 / 10
    assert.equal(e.recalculate(400, 0, 1), undefined, 'idle all period: nothing learnt, nothing changes');
    assert.equal(e.bufferSize, 2000);
    assert.equal(e.throughput, 200_000);
  });

  test('a task starved for input more than half the period gets full buffers, whatever its throughput', () => {
    const d = new BufferDebloater(settings(), 10, 0);
    d.idle(0);
    d.busy(150); // 50 ms of work in the 200 ms period, 500 bytes: by throughput alone 1,000 bytes
    assert.equal(d.recalculate(200, 500, 1), 32 * 1024, 'starved: nothing queues ahead of a barrier');
    // busy all the next period at that rate: back to the size its throughput gives
    const size = d.recalculate(400, 2_000, 1)!;
    assert.ok(size < 32 * 1024, `busy again: ${size}`);
  });

  test('zero throughput while busy (stuck on output or on one long record) shrinks to the minimum', () => {
    const d = new BufferDebloater(settings({ samples: 1 }), 10, 0);
    assert.equal(d.recalculate(200, 40_000, 1), 2000);
    assert.equal(d.recalculate(400, 0, 1), 32);
    assert.equal(d.throughput, 0);
  });

  test('idle channels do not count: the budget is split over the channels that carried data', () => {
    const d = new BufferDebloater(settings(), 10, 0);
    assert.equal(d.recalculate(200, 40_000, 1), 2000);
    const e = new BufferDebloater(settings(), 10, 0);
    assert.equal(e.recalculate(200, 40_000, 4), 500);
    const f = new BufferDebloater(settings(), 10, 0);
    assert.equal(f.recalculate(200, 40_000, 0), 2000, 'no active channel counts as one');
  });

  test('throughput is a moving average over `samples` periods; the first sample starts it', () => {
    const d = new BufferDebloater(settings({ samples: 3 }), 10, 0); // alpha 0.5
    d.recalculate(200, 40_000, 1); // 200,000
    assert.equal(d.throughput, 200_000);
    d.recalculate(400, 0, 1); // sample 0
    assert.equal(d.throughput, 100_000);
    d.recalculate(600, 80_000, 1); // sample 400,000
    assert.equal(d.throughput, 250_000);
  });

  test('a change below the threshold is not announced; one to a bound always is', () => {
    const d = new BufferDebloater(settings({ thresholdPercentages: 25 }), 10, 0);
    assert.equal(d.recalculate(200, 40_000, 1), 2000);
    assert.equal(d.recalculate(400, 44_000, 1), undefined, '2200: 9% more');
    assert.equal(d.bufferSize, 2000);
    assert.equal(d.recalculate(600, 60_000, 1), 3000, '50% more');
    assert.equal(d.recalculate(800, 20, 1), 32, 'down to the minimum');
    assert.equal(d.recalculate(1000, 20, 1), undefined, 'unchanged');
  });

  test('a minimum outside 16 bytes .. the buffer size is refused with the key to fix', () => {
    assert.throws(
      () => new BufferDebloater(settings({ minBufferSize: 8 }), 10, 0),
      /taskmanager\.memory\.min-segment-size must be from 16 bytes/,
    );
  });
});

describe('buffer debloating between a gate and a partition', () => {
  test('the gate announces a new size with its next credit; the producer fills buffers of that size', () => {
    const credits: Array<{ credit: number; bufferSize?: number }> = [];
    let now = 0;
    const d = new BufferDebloater(settings(), 10, now);
    const gate = new InputGate(
      1,
      (_ch, credit, bufferSize) =>
        credits.push({ credit, ...(bufferSize !== undefined ? { bufferSize } : {}) }),
      d,
    );
    const frames: Uint8Array[] = [];
    const partition = new ResultPartition({
      partitionId: 'p',
      numberOfSubpartitions: 1,
      maxBacklog: 4,
      onAvailable: () => {},
      send: (_id, _sub, kind, bytes) => {
        if (kind === 'buffer') frames.push(bytes);
        gate.onFrame(0, kind, new Uint8Array(bytes));
      },
      initialBufferSize: 32,
    });
    // the partition request carries the gate's initial size
    partition.onRequest(0, 1000, gate.initialBufferSize);
    for (let i = 0; i < 100; i++) partition.emit(0, 1000 + i);
    assert.ok(frames.length >= 10, `${frames.length} frames`);
    for (const f of frames) assert.ok(f.byteLength <= 32, `a frame of ${f.byteLength} bytes`);
    const got: unknown[] = [];
    const handler = { onRecords: (rs: unknown[]) => got.push(...rs), onEvent: () => {} };
    while (gate.pollNext(handler));
    gate.flushCredits();
    assert.deepEqual(credits, [{ credit: frames.length }]);
    // 20,000 bytes in 100 busy ms: 200 kB/s -> 2000 bytes per buffer on one channel of 10 buffers
    gate.bytesIn = 20_000;
    now = 100;
    gate.debloat(now);
    assert.equal(credits.at(-1)?.bufferSize, 2000, 'announced at once, without waiting for credit');
    partition.onCredit(0, 0, credits.at(-1)!.bufferSize);
    assert.equal(partition.bufferSizeOf(0), 2000);
    frames.length = 0;
    for (let i = 0; i < 2000; i++) partition.emit(0, 1000 + i);
    partition.flushAll();
    assert.ok(frames.some((f) => f.byteLength > 1000 && f.byteLength <= 2000));
    for (const f of frames) assert.ok(f.byteLength <= 2000, `a frame of ${f.byteLength} bytes`);
    while (gate.pollNext(handler));
    assert.equal(got.length, 2100, 'every record arrived');
  });

  test('a record larger than the debloated size travels whole in a buffer of its own size', () => {
    const frames: Uint8Array[] = [];
    const got: unknown[] = [];
    const gate = new InputGate(1, () => {});
    const partition = new ResultPartition({
      partitionId: 'p',
      numberOfSubpartitions: 1,
      maxBacklog: 4,
      onAvailable: () => {},
      send: (_id, _sub, kind, bytes) => {
        if (kind === 'buffer') frames.push(bytes);
        gate.onFrame(0, kind, new Uint8Array(bytes));
      },
    });
    partition.onRequest(0, 1000, 64);
    const big = 'x'.repeat(5000);
    partition.emit(0, big);
    partition.emitTimestamped(0, big, 12345);
    partition.flushAll();
    assert.equal(frames.length, 2, 'no fragments');
    gate.pollNext({ onRecords: (rs) => got.push(...rs), onEvent: () => {} });
    gate.pollNext({ onRecords: (rs) => got.push(...rs), onEvent: () => {} });
    assert.deepEqual(got, [big, big]);
  });

  test('a consumer without debloating gets full-size buffers from a producer that started small', () => {
    const frames: Uint8Array[] = [];
    const partition = new ResultPartition({
      partitionId: 'p',
      numberOfSubpartitions: 1,
      maxBacklog: 4,
      onAvailable: () => {},
      send: (_id, _sub, kind, bytes) => void (kind === 'buffer' && frames.push(bytes)),
      initialBufferSize: 32,
    });
    partition.onRequest(0, 1000);
    assert.equal(partition.bufferSizeOf(0), 32 * 1024);
    for (let i = 0; i < 20_000; i++) partition.emit(0, i);
    assert.ok(
      frames.length > 0 && frames[0]!.byteLength > 30_000,
      `first frame ${frames[0]?.byteLength} bytes`,
    );
  });
});

describe('buffer sizes through the exchange router', () => {
  test('a size announced while the request waits for its producer goes with the request', () => {
    const toProducer: unknown[] = [];
    const producer = { postMessage: (m: unknown) => toProducer.push(m) } as unknown as Worker;
    const consumer = { postMessage: () => {} } as unknown as Worker;
    const router = new ExchangeRouter('tm-1');
    router.expectConsumers('p1', ['consumer-exec']);
    router.openChannel(consumer, {
      t: 'openChannel',
      executionId: 'consumer-exec',
      channel: 0,
      partitionId: 'p1',
      subpartition: 0,
      producerAddress: '127.0.0.1:1',
      producerTaskManagerId: 'tm-1',
      credit: 4,
      bufferSize: 16,
    });
    router.credit('consumer-exec', 0, 0, 4096);
    assert.deepEqual(toProducer, [], 'no producer yet');
    router.partitionReady('p1', producer);
    assert.deepEqual(toProducer, [
      { t: 'subpartitionRequest', partitionId: 'p1', subpartition: 0, credit: 4, bufferSize: 4096 },
    ]);
    router.credit('consumer-exec', 0, 2, 8192);
    assert.deepEqual(toProducer[1], {
      t: 'credit',
      partitionId: 'p1',
      subpartition: 0,
      credit: 2,
      bufferSize: 8192,
    });
  });
});
