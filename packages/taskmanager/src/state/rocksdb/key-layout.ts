import { assignNormalizedKeyToKeyGroup, msgpackValueEnd, valueEncoder } from '@weir/core/runtime';

/*
 * Layout of a RocksDB key of keyed state: key group (2 bytes, big-endian), state id (2 bytes),
 * the normalized key (msgpack, self-delimiting), and for map state the user key (msgpack). Key
 * groups come first so one key group, one state of a key group, or one key's map can each be
 * scanned alone, and a full scan meets the key groups in order (as in Flink's RocksDB backend,
 * whose keys also begin with the key group).
 */

/** Bytes before the normalized key: key group and state id. */
export const KEY_HEADER_BYTES = 4;

/** key group, state id and normalized key: the prefix of every RocksDB key of this key's state */
export function stateKeyPrefix(stateId: number, nk: string | number, maxParallelism: number): Buffer {
  const n = valueEncoder.encode(nk);
  const out = Buffer.allocUnsafe(KEY_HEADER_BYTES + n);
  out.writeUInt16BE(assignNormalizedKeyToKeyGroup(nk, maxParallelism), 0);
  out.writeUInt16BE(stateId, 2);
  valueEncoder.buffer.copy(out, KEY_HEADER_BYTES, 0, n);
  return out;
}

/**
 * Writes the same bytes as stateKeyPrefix into out at `at`, without allocating; returns the
 * end, or -1 when out has no room (the caller grows its scratch buffer and tries again).
 */
export function writeStateKey(
  out: Buffer,
  at: number,
  stateId: number,
  nk: string | number,
  maxParallelism: number,
): number {
  return writeStateKeyInGroup(out, at, assignNormalizedKeyToKeyGroup(nk, maxParallelism), stateId, nk);
}

/** writeStateKey with the key's group already known. */
export function writeStateKeyInGroup(
  out: Buffer,
  at: number,
  group: number,
  stateId: number,
  nk: string | number,
): number {
  const n = valueEncoder.encode(nk);
  if (at + KEY_HEADER_BYTES + n > out.length) return -1;
  out[at] = group >>> 8;
  out[at + 1] = group & 0xff;
  out[at + 2] = stateId >>> 8;
  out[at + 3] = stateId & 0xff;
  const src = valueEncoder.buffer;
  const p = at + KEY_HEADER_BYTES;
  // keys are short: a byte loop beats Buffer.copy's call into C++ for them
  if (n <= 32) for (let i = 0; i < n; i++) out[p + i] = src[i]!;
  else src.copy(out, p, 0, n);
  return p + n;
}

/** The key group of a RocksDB key. */
export function keyGroupOf(key: Buffer): number {
  return key.readUInt16BE(0);
}

/** The state id of a RocksDB key. */
export function stateIdOf(key: Buffer): number {
  return key.readUInt16BE(2);
}

/** The first key after every key of key group g (for an iterator's upper bound). */
export function groupBound(g: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(g, 0);
  return b;
}

/**
 * The first key after every key starting with prefix: drop trailing 0xff bytes, add one to the
 * last; undefined when the prefix is all 0xff (no upper bound).
 */
export function prefixEnd(prefix: Buffer): Buffer | undefined {
  let i = prefix.length - 1;
  while (i >= 0 && prefix[i] === 0xff) i--;
  if (i < 0) return undefined;
  const end = Buffer.from(prefix.subarray(0, i + 1));
  end[i]! += 1;
  return end;
}

/** End of the normalized key in a RocksDB key: the user key of a map entry starts here. */
export function normalizedKeyEnd(key: Buffer): number {
  return msgpackValueEnd(key, KEY_HEADER_BYTES);
}

/**
 * A growing scratch buffer that RocksDB keys are built in, so reads and writes allocate no
 * key Buffer of their own (RocksDB copies the key bytes it is given).
 */
export class KeyScratch {
  buf = Buffer.allocUnsafeSlow(16 * 1024);

  /** Writes a state key (see stateKeyPrefix) at `at`, growing the buffer when needed; returns its end. */
  stateKey(at: number, stateId: number, nk: string | number, maxParallelism: number): number {
    for (;;) {
      const end = writeStateKey(this.buf, at, stateId, nk, maxParallelism);
      if (end >= 0) return end;
      this.grow(at);
    }
  }

  /** stateKey with the key's group already known. */
  stateKeyInGroup(at: number, group: number, stateId: number, nk: string | number): number {
    for (;;) {
      const end = writeStateKeyInGroup(this.buf, at, group, stateId, nk);
      if (end >= 0) return end;
      this.grow(at);
    }
  }

  /** Copies `bytes` to `at` (a map entry's user key after its prefix); returns their end. */
  bytes(at: number, bytes: Buffer): number {
    while (at + bytes.length > this.buf.length) this.grow(at);
    bytes.copy(this.buf, at);
    return at + bytes.length;
  }

  /** Copies src from `from` to `to` to `at`; returns their end. */
  copyIn(at: number, src: Buffer, from: number, to: number): number {
    while (at + to - from > this.buf.length) this.grow(at);
    return copyBytes(src, from, to, this.buf, at);
  }

  /** Encodes `value` at `at` with the codec, in place when it fits (else through the codec's buffer); returns its end. */
  value(at: number, value: unknown): number {
    const end = valueEncoder.encodeInto(value, this.buf, at);
    if (end >= 0) return end;
    const n = valueEncoder.encode(value);
    while (at + n > this.buf.length) this.grow(at);
    valueEncoder.buffer.copy(this.buf, at, 0, n);
    return at + n;
  }

  /** Doubles the buffer, keeping its first `keep` bytes (views of the old buffer stay valid). */
  grow(keep: number): void {
    const b = Buffer.allocUnsafeSlow(this.buf.length * 2);
    this.buf.copy(b, 0, 0, keep);
    this.buf = b;
    this.views = [];
  }

  /**
   * buf from `at` to `end` as a Buffer, made once per start and length below VIEW_SPAN: a write
   * batch copies its keys and values, so a flush's thousands of puts (keys at 0, values right
   * after) use a handful of views instead of two new Buffer objects each.
   */
  view(at: number, end: number): Buffer {
    const len = end - at;
    if (at >= VIEW_SPAN || len >= VIEW_SPAN) return this.buf.subarray(at, end);
    const i = at * VIEW_SPAN + len;
    let v = this.views[i];
    if (v === undefined) this.views[i] = v = this.buf.subarray(at, end);
    return v;
  }

  /**
   * The same for the i-th of several keys side by side (a multi-get's): the view slot i had, when
   * it still spans `at` to `end` of buf (keys of one length keep their places from batch to batch).
   */
  viewOf(i: number, at: number, end: number): Buffer {
    const v = this.slots[i];
    if (v !== undefined && v.byteOffset === at && v.length === end - at && v.buffer === this.buf.buffer)
      return v;
    return (this.slots[i] = this.buf.subarray(at, end));
  }

  private views: Buffer[] = [];
  private readonly slots: Buffer[] = [];
}

/**
 * Copies src from `from` to `to` into dst at `at` (room assumed); returns the end. A value of a
 * few bytes is copied in a loop, which costs less than the call into Buffer.copy.
 */
export function copyBytes(src: Buffer, from: number, to: number, dst: Buffer, at: number): number {
  const n = to - from;
  if (n <= 32) for (let i = 0; i < n; i++) dst[at + i] = src[from + i]!;
  else src.copy(dst, at, from, to);
  return at + n;
}

/** starts and lengths up to which KeyScratch.view keeps its views (at most VIEW_SPAN^2 of them) */
const VIEW_SPAN = 64;
