import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { encodeRecords, encodeValue } from '../../packages/core/src/index.js';
import { DIRECT_ENCODING_VALUES } from '../helpers/codec-values.js';
import { InputGate } from '../../packages/taskmanager/src/network/input-gate.js';
import { ResultPartition } from '../../packages/taskmanager/src/network/result-partition.js';
import type { TimestampRuns } from '../../packages/taskmanager/src/network/buffer-format.js';

/** network/buffer-format.ts: TARGET_BUFFER_BYTES */
const TARGET_BUFFER_BYTES = 32 * 1024;

/** A producer wired to a consumer's gate the way the TaskManager wires them, with unlimited credit. */
function pipe(bufferSize?: number): {
  partition: ResultPartition;
  frames: Uint8Array[];
  received: () => unknown[];
  receivedTimed: () => { records: unknown[]; timestamps: Array<number | undefined> };
} {
  const frames: Uint8Array[] = [];
  const gate = new InputGate(1, () => {});
  const partition = new ResultPartition({
    partitionId: 'p',
    numberOfSubpartitions: 1,
    maxBacklog: 4,
    onAvailable: () => {},
    send: (_id, _sub, kind, bytes) => {
      // what crosses a thread or gRPC: a copy of the bytes, never the producer's objects
      const copy = new Uint8Array(bytes);
      if (kind === 'buffer') frames.push(copy);
      gate.onFrame(0, kind, copy);
    },
    ...(bufferSize ? { bufferSize } : {}),
  });
  partition.onRequest(0, 1_000_000);
  /** the records that arrived, and each one's timestamp (undefined: none) */
  const receivedTimed = (): { records: unknown[]; timestamps: Array<number | undefined> } => {
    const records: unknown[] = [];
    const timestamps: Array<number | undefined> = [];
    const handler = {
      onRecords: (rs: unknown[], _ch: number, ts?: TimestampRuns) => {
        records.push(...rs);
        if (ts === undefined) timestamps.push(...rs.map(() => undefined));
        else
          for (let r = 0; r < ts.runs; r++) {
            const end = r + 1 < ts.runs ? ts.starts[r + 1]! : rs.length;
            for (let i = ts.starts[r]!; i < end; i++) timestamps.push(ts.values[r]!);
          }
      },
      onEvent: () => {},
    };
    while (gate.pollNext(handler)) {
      /* drain */
    }
    return { records, timestamps };
  };
  const received = (): unknown[] => receivedTimed().records;
  return { partition, frames, received, receivedTimed };
}

describe('network buffers are bounded in bytes', () => {
  test('no buffer exceeds the buffer size, whatever the record sizes', () => {
    const { partition, frames, received } = pipe();
    const records: unknown[] = [];
    for (let i = 0; i < 2000; i++) {
      const size = i % 97 === 0 ? 100_000 + i * 10 : (i * 37) % 3000;
      records.push({ i, s: 'x'.repeat(size) });
    }
    for (const r of records) partition.emit(0, r);
    partition.flushAll();
    assert.ok(frames.length > 10);
    for (const f of frames) assert.ok(f.byteLength <= TARGET_BUFFER_BYTES, `frame of ${f.byteLength} bytes`);
    assert.deepStrictEqual(received(), records);
  });

  test('records of 2 to 40 MB span many buffers and are reassembled exactly; 130 MB in one window', () => {
    const { partition, frames, received } = pipe();
    const sizes = [2, 40, 5, 40, 40, 3].map((mb) => mb * 1024 * 1024);
    const records = sizes.map((n, i) => ({ i, bytes: new Uint8Array(n).fill(i + 1), tail: 'end' }));
    let total = 0;
    for (const r of records) {
      partition.emit(0, r);
      partition.emit(0, `small ${r.i}`);
      total += r.bytes.byteLength;
    }
    partition.flushAll();
    assert.ok(total > 128 * 1024 * 1024);
    assert.ok(Math.max(...frames.map((f) => f.byteLength)) <= TARGET_BUFFER_BYTES);
    const got = received() as Array<{ i: number; bytes: Uint8Array; tail: string } | string>;
    assert.equal(got.length, records.length * 2);
    records.forEach((r, k) => {
      const g = got[2 * k] as { i: number; bytes: Uint8Array; tail: string };
      assert.equal(g.i, r.i);
      assert.equal(g.tail, 'end');
      assert.equal(g.bytes.byteLength, r.bytes.byteLength);
      assert.ok(g.bytes.every((b) => b === r.i + 1));
      assert.equal(got[2 * k + 1], `small ${r.i}`);
    });
  });

  test('a small buffer size still carries every record (fragments of every length)', () => {
    for (const size of [16, 17, 64, 1000]) {
      const { partition, frames, received } = pipe(size);
      const records = Array.from({ length: 300 }, (_, i) => [
        'k'.repeat(i),
        i,
        new Map([[i, 'v'.repeat(i % 50)]]),
      ]);
      for (const r of records) partition.emit(0, r);
      partition.flushAll();
      for (const f of frames) assert.ok(f.byteLength <= size);
      assert.deepStrictEqual(received(), records);
    }
  });

  test('a record changed after it was emitted arrives as it was at emit time', () => {
    const { partition, received } = pipe();
    const reused = { n: 0, tags: [] as number[] };
    for (let i = 0; i < 100; i++) {
      reused.n = i;
      reused.tags.push(i);
      partition.emit(0, reused);
    }
    reused.n = -1;
    partition.flushAll();
    const got = received() as Array<{ n: number; tags: number[] }>;
    assert.deepStrictEqual(
      got.map((r) => r.n),
      Array.from({ length: 100 }, (_, i) => i),
    );
    assert.equal(got[5]!.tags.length, 6);
  });

  test('a record the codec refuses fails with the type and the operators', () => {
    const p = new ResultPartition({
      partitionId: 'p',
      numberOfSubpartitions: 1,
      maxBacklog: 4,
      onAvailable: () => {},
      send: () => {},
      description: "'Parse' to 'Count'",
    });
    class Event {
      at = 1;
    }
    assert.throws(
      () => p.emit(0, { e: new Event() }),
      /Cannot send a record from 'Parse' to 'Count': record\.e is an instance of class Event/,
    );
  });
});

describe('output beyond the in-memory budget of a subpartition', () => {
  /** A partition that spills past 3 buffers in memory into `dir`, its frames into `gate`. */
  function spilling(dir: string, gate: InputGate, onBuffer: (bytes: Uint8Array) => void): ResultPartition {
    return new ResultPartition({
      partitionId: 'p',
      numberOfSubpartitions: 1,
      maxBacklog: 2,
      maxBuffersInMemory: 3,
      spillDirectory: dir,
      onAvailable: () => {},
      send: (_id, _sub, kind, bytes) => {
        if (kind === 'buffer') onBuffer(bytes);
        gate.onFrame(0, kind, new Uint8Array(bytes));
      },
    });
  }

  test('goes to a spill file and comes back in order, events included, as credit arrives', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'weir-spill-'));
    const gate = new InputGate(1, () => {});
    let sent = 0;
    const p = spilling(dir, gate, () => sent++);
    p.onRequest(0, 1);
    // one call emitting far more than the credits: 200,000 records, about 3 MB
    for (let i = 0; i < 200_000; i++) p.emit(0, { i, s: 'abcdefgh' });
    p.broadcastEvent({ type: 'EndOfData' });
    for (let i = 200_000; i < 200_010; i++) p.emit(0, { i, s: 'abcdefgh' });
    p.flushAll();
    assert.equal(sent, 1, 'one buffer for one credit');
    assert.ok(p.bytesSpilled > 2_000_000, `spilled ${p.bytesSpilled} bytes`);
    assert.equal(p.isAvailable(), false);
    assert.deepEqual(readdirSync(dir), [], 'the spill file is unlinked at once');
    const got: number[] = [];
    const events: Array<[string, number]> = [];
    const handler = {
      onRecords: (rs: unknown[]) => got.push(...(rs as Array<{ i: number }>).map((r) => r.i)),
      onEvent: (e: { type: string }) => events.push([e.type, got.length]),
    };
    while (!p.isDrained()) {
      p.onCredit(0, 7);
      while (gate.pollNext(handler)) {
        /* drain */
      }
    }
    assert.deepEqual(
      got,
      Array.from({ length: 200_010 }, (_, i) => i),
    );
    assert.deepEqual(events, [['EndOfData', 200_000]]);
    assert.equal(p.isAvailable(), true);
    p.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('a consumer that asked for small buffers (buffer debloating) gets its spilled output in full-size ones', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'weir-spill-'));
    const gate = new InputGate(1, () => {});
    const sizes: number[] = [];
    const p = spilling(dir, gate, (b) => sizes.push(b.byteLength));
    p.onRequest(0, 1, 64);
    // 100,000 records of about 20 bytes in one call: 2 MB that would be about 35,000 spilled
    // buffers of 64 bytes; past a backlog of full-size buffers (2 x 32 KiB) spilled, the rest of
    // the burst waits ahead of a barrier anyway and goes in full-size buffers
    for (let i = 0; i < 100_000; i++) p.emit(0, { i, s: 'abcdefgh' });
    p.flushAll();
    let got = 0;
    const handler = { onRecords: (rs: unknown[]) => void (got += rs.length), onEvent: () => {} };
    while (!p.isDrained()) {
      p.onCredit(0, 7);
      while (gate.pollNext(handler)) {
        /* drain */
      }
    }
    assert.equal(got, 100_000);
    // the buffers kept in memory before the spill began are the consumer's size
    assert.ok(
      sizes.slice(0, 3).every((n) => n <= 64),
      `${sizes.slice(0, 4).join(', ')}`,
    );
    assert.ok(sizes.length < 3_000, `${sizes.length} buffers for 2 MB`);
    assert.ok(Math.max(...sizes) > TARGET_BUFFER_BYTES - 64, `largest buffer ${Math.max(...sizes)}`);
    p.close();
    rmSync(dir, { recursive: true, force: true });
  });
});

describe('records written by the direct encoding (numbers, booleans, null, short ASCII strings)', () => {
  /** the values that fit into one buffer (whole record buffers, no fragments) */
  const SMALL_VALUES = DIRECT_ENCODING_VALUES.filter((v) => encodeValue(v).byteLength < 1000);

  test('are the bytes the record codec writes, and arrive as sent', () => {
    const { partition, frames, received } = pipe();
    const records: unknown[] = [];
    // enough rounds that records meet the end of a buffer at every offset
    for (let round = 0; round < 1500; round++) records.push(...SMALL_VALUES);
    for (const r of records) partition.emit(0, r);
    partition.flushAll();
    assert.ok(frames.length > 2, 'the records span several buffers');
    // deepStrictEqual compares primitives with Object.is: -0 stays -0, NaN stays NaN
    assert.deepStrictEqual(received(), records);
    // each buffer: a header byte, the MessagePack array-32 header, then the records as the codec writes them
    let next = 0;
    for (const f of frames) {
      const b = Buffer.from(f);
      const n = b.readUInt32BE(2);
      const codec = Buffer.from(encodeRecords(records.slice(next, next + n)));
      const codecBody = codec.subarray(codec[0] === 0xdc ? 3 : 5);
      assert.ok(b.subarray(6).equals(codecBody), `buffer of records ${next}..${next + n}`);
      next += n;
    }
    assert.equal(next, records.length);
  });

  test('with timestamps (runs of every length, jumps, a buffer end at every offset): each record keeps its own', () => {
    const { partition, frames, receivedTimed } = pipe();
    const records: unknown[] = [];
    const stamps: number[] = [];
    let t = 1000;
    for (let round = 0; round < 1500; round++)
      for (const v of SMALL_VALUES) {
        // a new run every few records (the common case of a fast source), now and then a
        // jump back or far ahead (the slow path: fixed runs or offsets)
        const i = records.length;
        if (i % 7 === 0) t += 1;
        const ts = i % 101 === 0 ? t + 5_000_000 : i % 103 === 0 ? t - 70 : t;
        records.push(v);
        stamps.push(ts);
        partition.emitTimestamped(0, v, ts);
      }
    partition.flushAll();
    assert.ok(frames.length > 2, 'the records span several buffers');
    const got = receivedTimed();
    assert.deepStrictEqual(got.records, records);
    // every buffer carried its records' timestamps (none is undefined)
    assert.deepStrictEqual(got.timestamps, stamps);
  });
});

describe('a timestamped record that nearly fills a buffer', () => {
  test('its timestamp block still fits (records of 32,745 to 32,750 characters, integer timestamp)', () => {
    for (let len = 32_745; len <= 32_750; len++) {
      const got: unknown[] = [];
      const stamps: number[] = [];
      const gate = new InputGate(1, () => {});
      const p = new ResultPartition({
        partitionId: 'p',
        numberOfSubpartitions: 1,
        maxBacklog: 4,
        onAvailable: () => {},
        send: (_id, _sub, kind, bytes) => gate.onFrame(0, kind, new Uint8Array(bytes)),
      });
      p.onRequest(0, 1000);
      const r = 'x'.repeat(len);
      p.emitTimestamped(0, r, 5);
      p.flushAll();
      const handler = {
        onRecords: (rs: unknown[], _ch: number, ts?: TimestampRuns) => {
          got.push(...rs);
          // one record: one run
          if (ts) stamps.push(...ts.values.subarray(0, ts.runs));
        },
        onEvent: () => {},
      };
      while (gate.pollNext(handler));
      assert.deepEqual(got, [r], `a record of ${len} characters`);
      assert.deepEqual(stamps, [5]);
    }
  });
});
