import { setImmediate as yieldToLoop } from 'node:timers/promises';
import {
  UnsupportedValueError,
  assignNormalizedKeyToKeyGroup,
  encodeValue,
  type SlabArena,
} from '@weir/core/runtime';
import type { CopyOnWriteTable, PreImages } from './copy-on-write-table.js';
import { KeyGroupChunks } from './key-group-chunks.js';
import type { KeyGroupBatch, KeyedStateBatches, KeyedStateSnapshot } from './keyed-state-backend.js';

/**
 * The asynchronous part of a heap snapshot: serialization in slices on the task thread, handing
 * the event loop back between slices so records keep flowing; this bounds the longest stall a
 * checkpoint causes.
 */
export const SLICE_MS = 4;

/**
 * How the serializer slices its work: slices of `ms`, up to `maxMs` while much is left (so a
 * large snapshot takes more of the thread and finishes sooner, each stall still bounded); the
 * clock is read every `checkEvery` entries.
 */
export interface SnapshotSlicing {
  ms: number;
  checkEvery: number;
  maxMs?: number;
  /** the smallest segment of a key group handed on before the end (default 16 KiB; Infinity: none) */
  minSegment?: number;
}

export const DEFAULT_SLICING: SnapshotSlicing = { ms: SLICE_MS, checkEvery: 256, maxMs: 6 };

/**
 * The slices of one serialization of `total` entries. The loop calls `due()` every
 * `checkEvery` entries and, when it says so, awaits `pause(done)`; the next slice's length is
 * half the time the rest is estimated to take (from the time per entry so far), between `ms`
 * and `maxMs`.
 */
export class Slicer {
  private sliceStart = performance.now();
  private spent = 0;
  private budget: number;

  constructor(
    private readonly slicing: SnapshotSlicing,
    private readonly total: number,
  ) {
    this.budget = slicing.ms;
  }

  due(): boolean {
    return performance.now() - this.sliceStart >= this.budget;
  }

  async pause(done: number): Promise<void> {
    const { ms, maxMs = ms } = this.slicing;
    this.spent += performance.now() - this.sliceStart;
    const left = done > 0 ? ((this.total - done) * this.spent) / done : Infinity;
    this.budget = Math.min(maxMs, Math.max(ms, left / 2));
    await yieldToLoop();
    this.sliceStart = performance.now();
  }
}

/** A table and its pre-images of one snapshot (see CopyOnWriteTable). */
export interface TableView {
  table: CopyOnWriteTable<unknown>;
  pre: PreImages;
}

/**
 * Key group batches of the views' entries, the tables read as of the barrier. A key group comes
 * in segments: at the end of a slice, every key group with more than about a quarter of its
 * expected share pending is handed on as a batch, so the writer stores (or uploads) them while
 * the next slices are encoded; the rest follows at the end. The views are released as soon as
 * every table has been read.
 */
export async function* heapSnapshotBatches(
  views: TableView[],
  maxParallelism: number,
  slicing: SnapshotSlicing = DEFAULT_SLICING,
  arena?: SlabArena,
): AsyncGenerator<KeyGroupBatch> {
  const chunks = new KeyGroupChunks(maxParallelism, arena);
  let total = 0;
  for (const { table } of views) total += table.map.size;
  const slicer = new Slicer(slicing, total);
  let encoded = 0;
  /** the segments of key groups with at least `minBytes` pending */
  function* segments(minBytes: number): Generator<KeyGroupBatch> {
    for (let kg = 0; kg < maxParallelism; kg++) {
      const count = chunks.counts[kg]!;
      if (count === 0 || chunks.pending(kg) < minBytes) continue;
      encoded += chunks.pending(kg);
      yield { keyGroup: kg, count, parts: chunks.take(kg) };
    }
  }
  try {
    let n = 0;
    for (const { table, pre } of views) {
      // every entry is [name, key, value]: the array header and the name are the same bytes
      const slice = new TableSlice(table, pre, chunks, maxParallelism, slicing.checkEvery);
      for (;;) {
        const read = slice.encode(slicer);
        n += read;
        if (slice.done) break;
        let pending = 0;
        for (let kg = 0; kg < maxParallelism; kg++) pending += chunks.pending(kg);
        // a quarter of a key group's expected share, at least MIN_SEGMENT: few segments per key group
        const expected = ((encoded + pending) * total) / Math.max(1, n);
        yield* segments(Math.max(slicing.minSegment ?? MIN_SEGMENT, expected / maxParallelism / 4));
        await slicer.pause(n);
      }
      // this table is read: later accesses need no more copies for this snapshot
      table.releaseView(pre);
    }
  } finally {
    for (const { table, pre } of views) table.releaseView(pre);
  }
  yield* segments(0);
}

/**
 * One table's entries encoded a slice at a time. The loop lives in a plain method, not in the
 * async generator that hands the batches on: V8 optimizes a method called once per slice, but
 * runs a generator's loop, resumed once per slice, in its baseline tier (about 3x slower per
 * entry here).
 */
class TableSlice {
  private readonly it: MapIterator<[string | number, unknown]>;
  private readonly head: Buffer;
  private readonly isMap: boolean;
  done = false;

  constructor(
    private readonly table: CopyOnWriteTable<unknown>,
    private readonly pre: PreImages,
    private readonly chunks: KeyGroupChunks,
    private readonly maxParallelism: number,
    private readonly checkEvery: number,
  ) {
    this.it = table.map.entries();
    this.head = Buffer.concat([ARRAY3, encodeValue(table.name)]);
    this.isMap = table.kind === 'map';
  }

  /** Encodes entries until the slicer says the slice is over or the table ends; how many were read. */
  encode(slicer: Slicer): number {
    const { it, pre, chunks, head, isMap, maxParallelism, checkEvery } = this;
    let n = 0;
    for (let r = it.next(); !r.done; r = it.next()) {
      const k = r.value[0];
      const v = pre.size !== 0 && pre.has(k) ? pre.get(k) : r.value[1];
      if (v !== undefined) {
        const kg = assignNormalizedKeyToKeyGroup(k, maxParallelism);
        try {
          chunks.add(kg, head, k, isMap ? [...(v as Map<unknown, [unknown, unknown]>).values()] : v);
        } catch (e) {
          if (e instanceof UnsupportedValueError)
            throw new Error(e.describe('the value', `Cannot checkpoint keyed state '${this.table.name}'`));
          throw e;
        }
      }
      if (++n % checkEvery === 0 && slicer.due()) return n;
    }
    this.done = true;
    return n;
  }
}

/** the smallest segment of a key group handed on before the end of a snapshot */
const MIN_SEGMENT = 16 * 1024;

const ARRAY3 = Buffer.from([0x93]);

/** The MessagePack array header of `count` elements (always the 32-bit form: its size is known ahead). */
export function arrayHeader32(count: number): Uint8Array {
  const h = Buffer.allocUnsafe(5);
  h[0] = 0xdd;
  h.writeUInt32BE(count, 1);
  return h;
}

/**
 * The bytes of a canonical snapshot file, batch by batch, filling `index` (key group ->
 * [offset, length], or [offset, length, offset, length, ...] for a key group that came in
 * several batches, each its own MessagePack array) as it goes; `index` is complete when the
 * iteration ends.
 */
export async function* snapshotFileChunks(
  batches: AsyncIterable<KeyGroupBatch>,
  index: Record<number, number[]>,
): AsyncGenerator<Uint8Array> {
  let offset = 0;
  for await (const b of batches) {
    const header = arrayHeader32(b.count);
    let len = header.byteLength;
    yield header;
    for (const p of b.parts) {
      len += p.byteLength;
      yield p;
    }
    (index[b.keyGroup] ??= []).push(offset, len);
    offset += len;
  }
}

/**
 * A whole canonical snapshot in one buffer (savepoint tests, callers without a streaming
 * writer), each key group's segments joined into one batch.
 */
export async function collectBatches(kb: KeyedStateBatches): Promise<KeyedStateSnapshot | undefined> {
  const groups = new Map<number, { count: number; parts: Uint8Array[] }>();
  for await (const b of kb.batches) {
    const g = groups.get(b.keyGroup);
    if (g) {
      g.count += b.count;
      g.parts.push(...b.parts);
    } else groups.set(b.keyGroup, { count: b.count, parts: [...b.parts] });
  }
  if (groups.size === 0) return undefined;
  const index: Record<number, [number, number]> = {};
  const chunks: Uint8Array[] = [];
  let offset = 0;
  for (const kg of [...groups.keys()].sort((a, b) => a - b)) {
    const g = groups.get(kg)!;
    chunks.push(arrayHeader32(g.count), ...g.parts);
    let len = 5;
    for (const p of g.parts) len += p.byteLength;
    index[kg] = [offset, len];
    offset += len;
  }
  return { data: Buffer.concat(chunks), index, kinds: kb.kinds };
}
