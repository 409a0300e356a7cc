import { DeltaOp } from '../incremental-snapshot.js';
import { NO_OPTIONS, type RocksIterator } from './binding.js';
import { pack } from './held-values.js';
import { KEY_HEADER_BYTES, keyGroupOf, normalizedKeyEnd, stateIdOf } from './key-layout.js';
import { listHeader } from './list-values.js';
import { decodeTimerKey } from './timer-keys.js';

/*
 * Snapshot batches built from RocksDB's stored bytes without decoding them: keys and values are
 * already msgpack (written by the same codec), so headers are written around the stored bytes.
 */

/** Rows read from RocksDB per call while snapshotting (measured: see bench/README.md). */
const SCAN_BATCH = 16_384;

/** msgpack fixarray of 3: [state name, key, value] */
const ENTRY_HEADER = 0x93;
/** namespaced state: [state name, key, value, namespace]; timers: [state name, key, timestamp, namespace] */
const NAMESPACED_HEADER = Buffer.from([0x94]);
/** fixarray of 2: [user key, user value] */
const PAIR_HEADER = 0x92;
// delta operations (see DeltaOp): a fixarray header and the op code
export const OP_PUT = Buffer.from([0x94, DeltaOp.PUT]);
export const OP_DELETE_KEY = Buffer.from([0x93, DeltaOp.DELETE_KEY]);
const OP_MAP_PUT = Buffer.from([0x95, DeltaOp.MAP_PUT]);
const OP_MAP_REMOVE = Buffer.from([0x94, DeltaOp.MAP_REMOVE]);
// timers: [op, state, key, namespace, timestamp]
const OP_TIMER_PUT = Buffer.from([0x95, DeltaOp.MAP_PUT]);
const OP_TIMER_REMOVE = Buffer.from([0x95, DeltaOp.MAP_REMOVE]);

/**
 * Packed state names by state id, and the layout of each: map state (key | user key), namespaced
 * state (key | namespace, see eventtime/rocksdb-namespaced-state.ts) or timers (timer-keys.ts).
 */
export type StateNames = Map<
  number,
  { name: Buffer; map: boolean; list?: boolean; namespaced?: boolean; timers?: boolean }
>;

/** A timer row as [state name, key, timestamp, namespace], the key and namespace packed. */
function timerEntry(name: Buffer, k: Buffer): Buffer[] {
  const t = decodeTimerKey(k);
  return [NAMESPACED_HEADER, name, pack(t.normalizedKey), pack(t.timestamp), pack(t.namespaceKey)];
}

function array32(n: number): Buffer {
  const b = Buffer.allocUnsafe(5);
  b[0] = 0xdd;
  b.writeUInt32BE(n, 1);
  return b;
}

function stateOf(
  names: StateNames,
  k: Buffer,
): { name: Buffer; map: boolean; list?: boolean; namespaced?: boolean; timers?: boolean } {
  const id = stateIdOf(k);
  const state = names.get(id);
  if (!state) throw new Error(`RocksDB state has an entry of unknown state id ${id}`);
  return state;
}

/** A batch is handed over once it reaches this many bytes (a key group's state then spans several batches). */
export const DEFAULT_MAX_BATCH_BYTES = 8 * 1024 * 1024;

/** Bytes of a chunk that snapshot batches are encoded into (a larger batch gets a larger one). */
const CHUNK_BYTES = 1 << 20;

/**
 * Where scanCanonical encodes its batches: rows are copied straight into a chunk, and a
 * finished batch is handed over as a view of it (the chunk is never written there again), so
 * a row costs no Buffer of its own and a batch no concatenation.
 */
class ChunkWriter {
  buf = Buffer.allocUnsafeSlow(CHUNK_BYTES);
  /** start of the batch being written, and the write position */
  start = 0;
  pos = 0;

  /** Makes room for n more bytes: a new chunk (with the batch so far) when this one is full. */
  room(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    const have = this.pos - this.start;
    const next = Buffer.allocUnsafeSlow(Math.max(CHUNK_BYTES, 2 * (have + n)));
    this.buf.copy(next, 0, this.start, this.pos);
    this.buf = next;
    this.start = 0;
    this.pos = have;
  }

  byte(b: number): void {
    this.buf[this.pos++] = b;
  }

  /** Copies src[from..to] (room() first); small copies by hand, which is cheaper than a native call. */
  bytes(src: Buffer, from = 0, to = src.length): void {
    const out = this.buf;
    let p = this.pos;
    if (to - from <= 32) for (let i = from; i < to; i++) out[p++] = src[i]!;
    else p += src.copy(out, p, from, to);
    this.pos = p;
  }

  /** Where the batch being written is at (an offset from its start: room() may move it). */
  get at(): number {
    return this.pos - this.start;
  }

  /** An array32 header with room for its count, patched by count32; returns its offset in the batch. */
  array32(): number {
    const at = this.at;
    this.buf[this.pos] = 0xdd;
    this.pos += 5;
    return at;
  }

  count32(at: number, n: number): void {
    this.buf.writeUInt32BE(n, this.start + at + 1);
  }

  /** The batch written since the last take(), as a view; the next batch starts after it. */
  take(): Buffer {
    const b = this.buf.subarray(this.start, this.pos);
    this.start = this.pos;
    return b;
  }
}

/**
 * Reads an iterator to its end and hands over canonical batches per key group, built from
 * the stored bytes without decoding them: a batch is an array32 header and, per entry, a
 * 3-array of the packed state name, the key's bytes and the value's bytes (map state: an
 * array32 of [user key, value] 2-arrays). It decodes exactly as encodeRecords() of the same
 * entries would. A key group whose batch reaches maxBatchBytes is handed over in several
 * batches, in key order (a large map is split into several entries of the same key, which a
 * restore merges), so memory stays bounded whatever the size of a key group. Rows are encoded
 * straight into a chunk (ChunkWriter). isClosed is asked before every read; when true the scan
 * gives up.
 */
export async function scanCanonical(
  it: RocksIterator,
  names: StateNames,
  onBatch: (group: number, bytes: Buffer, entries: number) => void | Promise<void>,
  isClosed: () => boolean,
  maxBatchBytes = DEFAULT_MAX_BATCH_BYTES,
): Promise<void> {
  const w = new ChunkWriter();
  let group = -1;
  let groupEntries = 0;
  let groupHeader = -1;
  // the map entry being gathered: its state id, the offsets in the batch of its key and of its
  // pairs' header
  let mapId = -1;
  let mapKeyAt = -1;
  let mapKeyLen = 0;
  let mapHeader = -1;
  let mapEntries = 0;
  const endMap = (): void => {
    if (mapHeader >= 0) w.count32(mapHeader, mapEntries);
    mapId = -1;
    mapKeyAt = -1;
    mapHeader = -1;
    mapEntries = 0;
  };
  const startBatch = (): void => {
    w.room(5);
    groupHeader = w.array32();
  };
  const endBatch = async (): Promise<void> => {
    endMap();
    if (groupEntries > 0) {
      w.count32(groupHeader, groupEntries);
      await onBatch(group, w.take(), groupEntries);
    } else w.pos = w.start; // nothing but the header
    groupEntries = 0;
    groupHeader = -1;
  };
  /** whether the map key of row k (from KEY_HEADER_BYTES to keyEnd) is the one being gathered */
  const sameMapKey = (k: Buffer, keyEnd: number): boolean => {
    const n = keyEnd - KEY_HEADER_BYTES;
    if (mapKeyAt < 0 || n !== mapKeyLen) return false;
    const b = w.buf;
    const at = w.start + mapKeyAt;
    for (let i = 0; i < n; i++) if (b[at + i] !== k[KEY_HEADER_BYTES + i]) return false;
    return true;
  };
  for (;;) {
    if (isClosed()) throw new Error('The task ended while its RocksDB state was being snapshotted');
    // flat rows and large batches: fewer round trips to libuv's pool and no pair array per row
    const { rows, finished } = await it._nextvAsync(SCAN_BATCH, NO_OPTIONS);
    for (let j = 0; j < rows.length; j += 2) {
      const k = rows[j]!;
      const v = rows[j + 1]!;
      const g = keyGroupOf(k);
      if (g !== group) {
        if (groupHeader >= 0) await endBatch();
        group = g;
        startBatch();
      } else if (w.at >= maxBatchBytes) {
        await endBatch();
        startBatch();
      }
      const id = stateIdOf(k);
      const state = stateOf(names, k);
      const name = state.name;
      if (state.namespaced) {
        endMap();
        const keyEnd = normalizedKeyEnd(k);
        w.room(1 + name.length + k.length + v.length);
        w.byte(NAMESPACED_HEADER[0]!);
        w.bytes(name);
        w.bytes(k, KEY_HEADER_BYTES, keyEnd);
        w.bytes(v);
        w.bytes(k, keyEnd);
        groupEntries++;
      } else if (state.timers) {
        endMap();
        const parts = timerEntry(name, k);
        let n = 0;
        for (const p of parts) n += p.length;
        w.room(n);
        for (const p of parts) w.bytes(p);
        groupEntries++;
      } else if (state.map) {
        const keyEnd = normalizedKeyEnd(k);
        w.room(1 + name.length + k.length + 6 + v.length);
        if (id !== mapId || !sameMapKey(k, keyEnd)) {
          endMap();
          mapId = id;
          w.byte(ENTRY_HEADER);
          w.bytes(name);
          mapKeyAt = w.at;
          mapKeyLen = keyEnd - KEY_HEADER_BYTES;
          w.bytes(k, KEY_HEADER_BYTES, keyEnd);
          mapHeader = w.array32();
          groupEntries++;
        }
        w.byte(PAIR_HEADER);
        w.bytes(k, keyEnd);
        w.bytes(v);
        mapEntries++;
      } else {
        endMap();
        // a list's stored elements get their array header (see list-values.ts)
        const header = state.list ? listHeader(v) : undefined;
        w.room(1 + name.length + k.length + v.length + (header ? header.length : 0));
        w.byte(ENTRY_HEADER);
        w.bytes(name);
        w.bytes(k, KEY_HEADER_BYTES);
        if (header) w.bytes(header);
        w.bytes(v);
        groupEntries++;
      }
    }
    if (finished || rows.length === 0) break;
  }
  if (groupHeader >= 0) await endBatch();
}

/**
 * The delta of one key group, in batches of about maxBatchBytes: for every changed key its
 * state in the snapshot's view (a put, or a removal when it is gone); for a cleared map, a
 * removal of the whole key and its entries as they are now. Built from the stored bytes, like
 * the canonical batches; the batches apply in order.
 */
export function* deltaBatches(
  view: RocksIterator,
  keys: Iterable<string>,
  names: StateNames,
  maxBatchBytes = DEFAULT_MAX_BATCH_BYTES,
): Generator<{ bytes: Buffer; ops: number }> {
  let parts: Buffer[] = [];
  let ops = 0;
  let bytes = 0;
  for (const tracked of keys) {
    if (bytes >= maxBatchBytes) {
      yield { bytes: Buffer.concat([array32(ops), ...parts]), ops };
      parts = [];
      ops = 0;
      bytes = 0;
    }
    bytes += tracked.length + 16;
    const key = Buffer.from(tracked.slice(1), 'latin1');
    const state = stateOf(names, key);
    view._seekSync(key);
    if (tracked[0] === 'p') {
      // a cleared map: drop the key, then put back what the map holds now
      parts.push(OP_DELETE_KEY, state.name, key.subarray(KEY_HEADER_BYTES));
      ops++;
      for (;;) {
        const { rows, finished } = view._nextvSync(256, NO_OPTIONS);
        let j = 0;
        for (; j < rows.length; j += 2) {
          const k = rows[j]!;
          if (k.length < key.length || k.compare(key, 0, key.length, 0, key.length) !== 0) break;
          parts.push(
            OP_MAP_PUT,
            state.name,
            key.subarray(KEY_HEADER_BYTES),
            k.subarray(key.length),
            rows[j + 1]!,
          );
          bytes += rows[j]!.length + rows[j + 1]!.length;
          ops++;
        }
        if (finished || j < rows.length || rows.length === 0) break;
      }
      continue;
    }
    const { rows } = view._nextvSync(1, NO_OPTIONS);
    const found = rows.length > 0 && rows[0]!.equals(key);
    if (found) bytes += rows[1]!.length;
    if (state.timers) {
      const t = decodeTimerKey(key);
      parts.push(
        found ? OP_TIMER_PUT : OP_TIMER_REMOVE,
        state.name,
        pack(t.normalizedKey),
        pack(t.namespaceKey),
        pack(t.timestamp),
      );
    } else if (state.map || state.namespaced) {
      // namespaced state as map state with the namespace for the user key
      const keyEnd = normalizedKeyEnd(key);
      if (found)
        parts.push(
          OP_MAP_PUT,
          state.name,
          key.subarray(KEY_HEADER_BYTES, keyEnd),
          key.subarray(keyEnd),
          rows[1]!,
        );
      else
        parts.push(OP_MAP_REMOVE, state.name, key.subarray(KEY_HEADER_BYTES, keyEnd), key.subarray(keyEnd));
    } else if (found) {
      parts.push(OP_PUT, state.name, key.subarray(KEY_HEADER_BYTES));
      if (state.list) parts.push(listHeader(rows[1]!));
      parts.push(rows[1]!);
    } else {
      parts.push(OP_DELETE_KEY, state.name, key.subarray(KEY_HEADER_BYTES));
    }
    ops++;
  }
  if (ops > 0) yield { bytes: Buffer.concat([array32(ops), ...parts]), ops };
}
