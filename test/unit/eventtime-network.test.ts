import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { ChannelEvent } from '../../packages/core/src/index.js';
import { decodeEvent, encodeEvent } from '../../packages/core/src/index.js';
import { InputGate } from '../../packages/taskmanager/src/network/input-gate.js';
import {
  createRecordWriter,
  type RecordTimestamp,
} from '../../packages/taskmanager/src/network/record-writer.js';
import { ResultPartition } from '../../packages/taskmanager/src/network/result-partition.js';
import {
  BufferHeader,
  VARINT_RUNS,
  type TimestampRuns,
} from '../../packages/taskmanager/src/network/buffer-format.js';
import { StatusWatermarkValve } from '../../packages/taskmanager/src/eventtime/watermark-valve.js';

const BUFFER = 32 * 1024;

/** One timestamp per record from the runs a gate hands over. */
function expandRuns(runs: TimestampRuns, count: number): number[] {
  assert.ok(runs.runs >= 1 && runs.starts[0] === 0, 'runs start at record 0');
  const out: number[] = [];
  for (let r = 0; r < runs.runs; r++) {
    const end = r + 1 < runs.runs ? runs.starts[r + 1]! : count;
    assert.ok(end > runs.starts[r]!, 'runs are not empty');
    for (let i = runs.starts[r]!; i < end; i++) out.push(runs.values[r]!);
  }
  assert.equal(out.length, count);
  return out;
}

interface Received {
  records: unknown[];
  timestamps: Array<number | undefined>;
  events: ChannelEvent[];
  /** per arriving item, in order: 'r' record or the event type */
  order: string[];
}

/** A producer wired to a consumer's gate as the TaskManager wires them (copies, unlimited credit). */
function pipe(bufferSize = BUFFER): {
  partition: ResultPartition;
  frames: Uint8Array[];
  receive: () => Received;
} {
  const frames: Uint8Array[] = [];
  const gate = new InputGate(1, () => {});
  const partition = new ResultPartition({
    partitionId: 'p',
    numberOfSubpartitions: 1,
    maxBacklog: 4,
    onAvailable: () => {},
    send: (_id, _sub, kind, bytes) => {
      const copy = new Uint8Array(bytes);
      if (kind === 'buffer') frames.push(copy);
      gate.onFrame(0, kind, copy);
    },
    bufferSize,
  });
  partition.onRequest(0, 1_000_000);
  const receive = (): Received => {
    const r: Received = { records: [], timestamps: [], events: [], order: [] };
    const handler = {
      onRecords: (rs: unknown[], _ch: number, runs?: TimestampRuns) => {
        const ts = runs && expandRuns(runs, rs.length);
        rs.forEach((x, i) => {
          r.records.push(x);
          const t = ts?.[i];
          r.timestamps.push(t === undefined || Number.isNaN(t) ? undefined : t);
          r.order.push('r');
        });
      },
      onEvent: (e: ChannelEvent) => {
        r.events.push(e);
        r.order.push(e.type);
      },
    };
    while (gate.pollNext(handler)) {
      /* drain */
    }
    return r;
  };
  return { partition, frames, receive };
}

describe('timestamps on the wire', () => {
  test('records without timestamps travel as plain record buffers, byte for byte as before', () => {
    const { partition, frames, receive } = pipe();
    const slot: RecordTimestamp = { value: undefined };
    const w = createRecordWriter(partition, 'forward', 0, 128, undefined, { recordsOut: 0 }, 'test', slot);
    for (let i = 0; i < 1000; i++) w.collect({ i });
    partition.flushAll();
    assert.ok(frames.every((f) => f[0] === BufferHeader.RECORDS));
    const r = receive();
    assert.equal(r.records.length, 1000);
    assert.ok(r.timestamps.every((t) => t === undefined));
  });

  test('timestamps arrive with their records, mixed with records without one, across buffers', () => {
    const { partition, frames, receive } = pipe(512);
    const slot: RecordTimestamp = { value: undefined };
    const w = createRecordWriter(partition, 'forward', 0, 128, undefined, { recordsOut: 0 }, 'test', slot);
    const expected: Array<number | undefined> = [];
    for (let i = 0; i < 3000; i++) {
      // a run without timestamps, then with, then mixed: a buffer switches in the middle
      const ts = i < 100 ? undefined : i % 7 === 0 ? undefined : 1_700_000_000_000 + i * 0.5;
      slot.value = ts;
      expected.push(ts);
      w.collect(['k', i, 'x'.repeat(i % 40)]);
    }
    partition.flushAll();
    assert.ok(
      frames.every((f) => f.byteLength <= 512),
      'no buffer exceeds the buffer size',
    );
    assert.ok(frames.some((f) => f[0] === BufferHeader.RECORDS_WITH_TIMESTAMPS));
    const r = receive();
    assert.deepEqual(
      r.records.map((x) => (x as unknown[])[1]),
      Array.from({ length: 3000 }, (_, i) => i),
    );
    assert.deepEqual(r.timestamps, expected);
  });

  test('timestamps close together take one, two or four bytes per record; others a float64; all round-trip', () => {
    // [spread of the timestamps, the width expected, fractional]
    const cases: Array<[number, number, boolean]> = [
      [200, 1, false],
      [60_000, 2, false],
      [3_000_000_000, 4, false],
      [2 ** 33, 8, false],
      [200, 8, true],
    ];
    for (const [spread, width, fractional] of cases) {
      const { partition, frames, receive } = pipe(4096);
      const expected: Array<number | undefined> = [];
      for (let i = 0; i < 2000; i++) {
        const ts =
          i % 11 === 0
            ? undefined
            : -5_000 + Math.floor(((i * 7919) % 1000) * (spread / 1000)) + (fractional ? 0.25 : 0);
        expected.push(ts);
        if (ts === undefined) partition.emit(0, i);
        else partition.emitTimestamped(0, i, ts);
      }
      partition.flushAll();
      const timed = frames.filter((f) => f[0] === BufferHeader.RECORDS_WITH_TIMESTAMPS);
      assert.ok(timed.length > 0);
      assert.ok(
        timed.every((f) => f[f.byteLength - 1] === width || f[f.byteLength - 1]! < width),
        `spread ${spread}: widths ${[...new Set(timed.map((f) => f[f.byteLength - 1]))].join(',')}`,
      );
      assert.ok(
        timed.some((f) => f[f.byteLength - 1] === width),
        `spread ${spread}: width ${width} used, saw ${[...new Set(timed.map((f) => f[f.byteLength - 1]))].join(',')}`,
      );
      assert.ok(frames.every((f) => f.byteLength <= 4096));
      const r = receive();
      assert.deepEqual(
        r.records,
        Array.from({ length: 2000 }, (_, i) => i),
      );
      assert.deepEqual(r.timestamps, expected, `spread ${spread}`);
    }
  });

  test('random timestamps that widen a buffer mid-way (range, fractions, records without) round-trip and fit', () => {
    let seed = 42;
    const rnd = (): number => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    const { partition, frames, receive } = pipe(2048);
    const expected: Array<number | undefined> = [];
    let t = 1_700_000_000_000;
    for (let i = 0; i < 20_000; i++) {
      const r = rnd();
      // phases of small steps within the buffer's range, and now and then a jump that needs
      // 2, 4 or 8 bytes (or a fraction) from that record on; 1% without a timestamp
      const phase = Math.floor(i / 2500) % 4;
      t += Math.floor(rnd() * 3) - 1;
      if (r < 0.01 && phase > 0) t += phase === 1 ? 300 : phase === 2 ? 70_000 : 2 ** 33;
      const ts = r > 0.99 ? undefined : phase === 3 && r > 0.98 ? t + 0.5 : t;
      expected.push(ts);
      const record = r < 0.5 ? i : `r${i}`.repeat(1 + (i % 7));
      if (ts === undefined) partition.emit(0, record);
      else partition.emitTimestamped(0, record, ts);
    }
    partition.flushAll();
    assert.ok(frames.every((f) => f.byteLength <= 2048));
    const widths = new Set(
      frames.filter((f) => f[0] === BufferHeader.RECORDS_WITH_TIMESTAMPS).map((f) => f[f.byteLength - 1]),
    );
    assert.deepEqual(
      [...widths].sort((a, b) => a! - b!),
      [0, 1, 2, 4, 8, VARINT_RUNS],
    );
    const got = receive();
    assert.equal(got.records.length, 20_000);
    assert.deepEqual(got.timestamps, expected);
  });

  test('runs filling a buffer to its last byte (every record size, runs of two) round-trip and fit', () => {
    // fractional timestamps far apart: float64 offsets would take 8 bytes a record, so runs of
    // two (12 bytes a run) are the smaller form, and the runs block decides where a buffer ends
    for (const size of [256, 300, 1024]) {
      const { partition, frames, receive } = pipe(size);
      const expected: number[] = [];
      for (let i = 0; i < 3_000; i++) {
        const t = (i >> 1) * 1e9 + 0.5;
        expected.push(t);
        partition.emitTimestamped(0, 'x'.repeat(i % 23), t);
      }
      partition.flushAll();
      assert.ok(frames.every((f) => f.byteLength <= size));
      assert.ok(frames.every((f) => f[f.byteLength - 1] === 0));
      assert.deepEqual(receive().timestamps, expected);
    }
  });

  test('one-byte timestamps let a buffer of small records hold about as many records as without', () => {
    const plain = pipe();
    for (let i = 0; i < 50_000; i++) plain.partition.emit(0, i % 100);
    plain.partition.flushAll();
    const timed = pipe();
    for (let i = 0; i < 50_000; i++)
      timed.partition.emitTimestamped(0, i % 100, 1_700_000_000_000 + (i >> 8));
    timed.partition.flushAll();
    const bytes = (fs: Uint8Array[]): number => fs.reduce((n, f) => n + f.byteLength, 0);
    // one byte per record of data, one of timestamp (a float64 each would be nine bytes per record)
    assert.ok(
      bytes(timed.frames) < 2.2 * bytes(plain.frames),
      `${bytes(timed.frames)} vs ${bytes(plain.frames)}`,
    );
    assert.equal(timed.receive().timestamps.length, 50_000);
  });

  test('records many to a millisecond travel as runs: a few bytes per run, the timestamps exact', () => {
    const plain = pipe();
    for (let i = 0; i < 50_000; i++) plain.partition.emit(0, i % 100);
    plain.partition.flushAll();
    const timed = pipe();
    const expected: number[] = [];
    for (let i = 0; i < 50_000; i++) {
      // 100 records per millisecond, as a fast source's
      const t = 1_700_000_000_000 + Math.floor(i / 100);
      expected.push(t);
      timed.partition.emitTimestamped(0, i % 100, t);
    }
    timed.partition.flushAll();
    const widths = new Set(timed.frames.map((f) => f[f.byteLength - 1]));
    assert.deepEqual([...widths], [VARINT_RUNS]);
    const bytes = (fs: Uint8Array[]): number => fs.reduce((n, f) => n + f.byteLength, 0);
    // two bytes per run of 100 one-byte records (fixed runs take 12, one-byte offsets 100)
    assert.ok(
      bytes(timed.frames) < 1.03 * bytes(plain.frames),
      `${bytes(timed.frames)} vs ${bytes(plain.frames)}`,
    );
    assert.deepEqual(timed.receive().timestamps, expected);
  });

  test('varint runs: differences of either sign, epoch and negative times, runs of any length, and the span limit', () => {
    const cases: Array<{ name: string; runs: Array<[number, number]>; varint: boolean }> = [
      {
        // out of order from run to run, up to the widest difference the form takes
        name: 'differences of either sign',
        runs: [
          [3, 1_700_000_000_000],
          [1, 1_700_000_000_000 - 64],
          [2, 1_700_000_000_000 - 64 + 2 ** 31 - 1],
          [1, 1_700_000_000_000 - 5],
          [4, 1_700_000_000_000 + 64],
          [1, 1_700_000_000_000 - 64],
        ],
        varint: true,
      },
      {
        name: 'negative times',
        runs: [
          [50, -8.64e15],
          [60, -8.64e15 + 1],
          [40, -8.64e15],
        ],
        varint: true,
      },
      // one-byte records: runs of 127, 128, 16,383 and 16,384 records (one, two and three varint bytes)
      {
        name: 'long runs',
        runs: [
          [127, 7],
          [128, 8],
          [16_383, 9],
          [16_384, 10],
          [1, 7],
        ],
        varint: true,
      },
      // a span of 2^31: not the varint form (its differences would not fit an int32)
      {
        name: 'span 2^31',
        runs: [
          [40, 0],
          [40, 2 ** 31],
          [40, 0],
        ],
        varint: false,
      },
    ];
    for (const c of cases) {
      const { partition, frames, receive } = pipe();
      const expected: number[] = [];
      for (const [n, t] of c.runs)
        for (let i = 0; i < n; i++) {
          expected.push(t);
          partition.emitTimestamped(0, i % 100, t);
        }
      partition.flushAll();
      const widths = frames.map((f) => f[f.byteLength - 1]);
      if (c.varint) assert.ok(widths.includes(VARINT_RUNS), `${c.name}: widths ${widths.join(',')}`);
      else assert.ok(!widths.includes(VARINT_RUNS), `${c.name}: widths ${widths.join(',')}`);
      assert.deepEqual(receive().timestamps, expected, c.name);
    }
  });

  test('varint runs filling a buffer to its last byte (every record size, runs of two) round-trip and fit', () => {
    // integer timestamps a million apart: offsets would take four bytes a record, so runs of
    // two (about five bytes a run as varints) are the smallest form and decide where a buffer ends
    for (const size of [64, 256, 300, 1024]) {
      const { partition, frames, receive } = pipe(size);
      const expected: number[] = [];
      for (let i = 0; i < 3_000; i++) {
        const t = 1_700_000_000_000 + (i >> 1) * 1_000_000;
        expected.push(t);
        partition.emitTimestamped(0, 'x'.repeat(i % 23), t);
      }
      partition.flushAll();
      assert.ok(frames.every((f) => f.byteLength <= size));
      assert.ok(frames.some((f) => f[f.byteLength - 1] === VARINT_RUNS));
      // some buffers end within a few bytes of the size: the reservation is not wasteful
      assert.ok(frames.some((f) => f.byteLength > size - 4));
      assert.deepEqual(receive().timestamps, expected);
    }
  });

  test('runs a few milliseconds apart that cross the widest span of the varint form round-trip and fit', () => {
    // per block: a record at 0, then runs 7 ms apart from 60 ms below 2^31 on: the varint form
    // ends mid-buffer, on a run that starts close to the one before it
    for (const size of [64, 128, 256, 1024]) {
      const { partition, frames, receive } = pipe(size);
      const expected: number[] = [];
      for (let b = 0; b < 100; b++) {
        const ts = [0, ...Array.from({ length: 40 }, (_, j) => 2 ** 31 - 60 + 7 * (j >> 1))];
        for (const t of ts) {
          expected.push(t);
          partition.emitTimestamped(0, 'x', t);
        }
      }
      partition.flushAll();
      assert.ok(frames.every((f) => f.byteLength <= size));
      assert.deepEqual(receive().timestamps, expected, `size ${size}`);
    }
  });

  test('a buffer of records without timestamps that a timestamped record joins near its end fits', () => {
    // the records before the first timestamped one form a run of their own in the runs form
    for (const size of [64, 128, 256]) {
      for (let fill = 0; fill < 40; fill++) {
        const { partition, frames, receive } = pipe(size);
        const expected: Array<number | undefined> = [];
        for (let i = 0; i < 200; i++) {
          // untimed records, then a timestamped one at each position of a buffer in turn
          const ts = i % 41 === fill ? 1_000 + i * 1e9 + 0.5 : undefined;
          expected.push(ts);
          if (ts === undefined) partition.emit(0, 'abc');
          else partition.emitTimestamped(0, 'abc', ts);
        }
        partition.flushAll();
        assert.ok(
          frames.every((f) => f.byteLength <= size),
          `size ${size}, fill ${fill}: ${frames.map((f) => f.byteLength).join(',')}`,
        );
        assert.deepEqual(receive().timestamps, expected);
      }
    }
  });

  test('a corrupt varint runs block is refused with the channel named', () => {
    const { partition, frames } = pipe();
    for (let i = 0; i < 300; i++) partition.emitTimestamped(0, i, 1_000 + (i >> 4));
    partition.flushAll();
    const frame = frames[0]!;
    assert.equal(frame[frame.byteLength - 1], VARINT_RUNS);
    // one run more than the varints hold
    const bad = new Uint8Array(frame);
    const view = new DataView(bad.buffer);
    view.setUint32(bad.byteLength - 9, view.getUint32(bad.byteLength - 9) + 1);
    const gate = new InputGate(1, () => {});
    gate.onFrame(0, 'buffer', bad);
    assert.throws(
      () => gate.pollNext({ onRecords: () => {}, onEvent: () => {} }),
      /Input channel 0: corrupt network buffer/,
    );
  });

  test('a record larger than a buffer keeps its timestamp', () => {
    const { partition, receive } = pipe(1024);
    partition.emitTimestamped(0, 'y'.repeat(10_000), -8.64e15);
    partition.emit(0, 'small');
    partition.emitTimestamped(0, 'z'.repeat(5000), 8.64e15);
    partition.flushAll();
    const r = receive();
    assert.deepEqual(r.records, ['y'.repeat(10_000), 'small', 'z'.repeat(5000)]);
    assert.deepEqual(r.timestamps, [-8.64e15, undefined, 8.64e15]);
  });

  test('watermarks are events in order behind the records before them; +Infinity round-trips', () => {
    const { partition, receive } = pipe();
    partition.emitTimestamped(0, 'a', 5);
    partition.broadcastEvent({ type: 'Watermark', timestamp: 4 });
    partition.emitTimestamped(0, 'b', 9);
    partition.broadcastEvent({ type: 'WatermarkStatus', idle: true });
    partition.broadcastEvent({ type: 'Watermark', timestamp: Infinity });
    const r = receive();
    assert.deepEqual(r.order, ['r', 'Watermark', 'r', 'WatermarkStatus', 'Watermark']);
    assert.deepEqual(r.events, [
      { type: 'Watermark', timestamp: 4 },
      { type: 'WatermarkStatus', idle: true },
      { type: 'Watermark', timestamp: Infinity },
    ]);
    assert.deepEqual(decodeEvent(encodeEvent({ type: 'Watermark', timestamp: -Infinity })), {
      type: 'Watermark',
      timestamp: -Infinity,
    });
  });

  test('a valve over a gate: the task watermark is the minimum of its channels, idle ones left out', () => {
    const out: Array<number | string> = [];
    const valve = new StatusWatermarkValve(3, {
      emitWatermark: (t) => out.push(t),
      emitWatermarkStatus: (idle) => out.push(idle ? 'idle' : 'active'),
    });
    const gate = new InputGate(3, () => {});
    const send = (ch: number, e: ChannelEvent): void => gate.onFrame(ch, 'event', encodeEvent(e));
    send(0, { type: 'Watermark', timestamp: 10 });
    send(1, { type: 'Watermark', timestamp: 20 });
    send(2, { type: 'Watermark', timestamp: 5 });
    send(2, { type: 'WatermarkStatus', idle: true });
    send(0, { type: 'Watermark', timestamp: 30 });
    send(0, { type: 'WatermarkStatus', idle: true });
    send(1, { type: 'WatermarkStatus', idle: true });
    const handler = {
      onRecords: () => {},
      onEvent: (e: ChannelEvent, ch: number) => {
        if (e.type === 'Watermark') valve.inputWatermark(e.timestamp, ch);
        else if (e.type === 'WatermarkStatus') valve.inputWatermarkStatus(e.idle, ch);
      },
    };
    while (gate.pollNext(handler)) {
      /* drain */
    }
    // the gate reads round-robin: 10, 20, 5 -> 5; then 30 (ch 0), idle (ch 1: 5 still holds it),
    // idle (ch 2: only ch 0 is left, 30), idle (ch 0: all idle, the input turns idle)
    assert.deepEqual(out, [5, 30, 'idle']);
  });
});
