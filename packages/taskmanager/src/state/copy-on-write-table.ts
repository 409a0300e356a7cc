/**
 * One heap state table with copy-on-write snapshots, after Flink's CopyOnWriteStateTable but
 * over a JavaScript Map: taking a snapshot is O(1) (a new, empty pre-image map), and the
 * snapshot's serializer walks the live map in slices while the task keeps processing.
 *
 * While a snapshot is in progress, the first access (read or write) of a key saves a deep copy
 * of its value as of the barrier into the snapshot's pre-images (a key absent at the barrier
 * saves `undefined`); the serializer takes a key's pre-image when there is one, else the live
 * value, which no access has reached since the barrier. Copying on reads too matters because
 * user functions mutate the objects state hands them (a list, a map, an accumulator) without
 * writing them back. The live object stays the user's; only the snapshot gets the copy.
 *
 * Deletes during a snapshot leave `undefined` in place (a tombstone) rather than removing the
 * key: a Map iterator visits a deleted-then-reinserted key a second time, which would put it into
 * the snapshot twice. Every reader already treats `undefined` as absent; the tombstones are
 * removed when the last snapshot in progress lets go of the table.
 */
/** shards of a snapshot's pre-images (a power of two) */
const SHARDS = 64;

/**
 * One snapshot's pre-images of one table: key -> value as of the barrier (undefined: absent).
 * Sharded because a JavaScript Map rehashes all its entries at once when it grows: one map of a
 * million keys stalls the task for tens of milliseconds at a growth step, 64 of them about 1/64
 * of that each. A bit per hash (about two bits per key of the table at the barrier) answers
 * most `has` of keys without a pre-image, which the serializer asks for every entry, without a
 * Map lookup.
 */
export class PreImages {
  private readonly shards: Array<Map<string | number, unknown> | undefined> = new Array<
    Map<string | number, unknown> | undefined
  >(SHARDS);
  /** the filter's bits, allocated on the first set */
  private bits: Int32Array | undefined;
  /** 32 - log2(number of bits): a hash's top bits pick its bit */
  private readonly shift: number;
  size = 0;

  /** `keys`: the size of the table at the barrier */
  constructor(keys = 0) {
    const log2 = Math.min(24, Math.max(10, Math.ceil(Math.log2(keys * 2 + 1))));
    this.shift = 32 - log2;
  }

  private static hash(key: string | number): number {
    if (typeof key === 'number') return Math.imul(key | 0, 0x9e3779b1);
    // the last characters: where keys that share a prefix differ
    let h = key.length;
    for (let i = Math.max(0, key.length - 16); i < key.length; i++)
      h = Math.imul(h ^ key.charCodeAt(i), 16777619);
    return Math.imul(h, 0x9e3779b1);
  }

  has(key: string | number): boolean {
    const bits = this.bits;
    if (bits === undefined) return false;
    const h = PreImages.hash(key);
    const bit = h >>> this.shift;
    if ((bits[bit >>> 5]! & (1 << (bit & 31))) === 0) return false;
    return this.shards[h >>> 26]?.has(key) ?? false;
  }

  get(key: string | number): unknown {
    return this.shards[PreImages.hash(key) >>> 26]?.get(key);
  }

  set(key: string | number, value: unknown): void {
    const h = PreImages.hash(key);
    const bits = (this.bits ??= new Int32Array(Math.max(1, (1 << (32 - this.shift)) >>> 5)));
    const bit = h >>> this.shift;
    bits[bit >>> 5]! |= 1 << (bit & 31);
    const m = (this.shards[h >>> 26] ??= new Map());
    const before = m.size;
    m.set(key, value);
    this.size += m.size - before;
  }

  clear(): void {
    this.shards.fill(undefined);
    this.bits = undefined;
    this.size = 0;
  }
}

export class CopyOnWriteTable<V> {
  readonly map = new Map<string | number, V | undefined>();
  /** the pre-images of each snapshot in progress over this table (usually none or one) */
  private views: PreImages[] = [];
  /** views.length > 0, as one field: the record path reads it on every access */
  private snapshotting = false;
  /** keys deleted while a snapshot was in progress: removed for real once none is */
  private tombstones: Array<string | number> = [];

  constructor(
    readonly name: string,
    readonly kind: string,
  ) {}

  get(key: string | number): V | undefined {
    const v = this.map.get(key);
    // a primitive handed out cannot be changed in place: only objects need their copy now
    if (this.snapshotting && typeof v === 'object' && v !== null) this.touch(key);
    return v;
  }

  set(key: string | number, value: V): void {
    if (this.snapshotting) this.touch(key);
    this.map.set(key, value);
  }

  delete(key: string | number): void {
    if (!this.snapshotting) {
      this.map.delete(key);
      return;
    }
    this.touch(key);
    if (this.map.get(key) !== undefined) {
      this.map.set(key, undefined);
      this.tombstones.push(key);
    }
  }

  /** Saves the key's value as of the barrier into every snapshot in progress that has none yet. */
  private touch(key: string | number): void {
    let copied = false;
    let copy: unknown;
    for (const pre of this.views) {
      if (pre.has(key)) continue;
      if (!copied) {
        copy = copyValue(this.map.get(key));
        copied = true;
      }
      pre.set(key, copy);
    }
  }

  /** The synchronous part of a snapshot: O(1). The returned pre-images must be released. */
  openView(): PreImages {
    const pre = new PreImages(this.map.size);
    this.views.push(pre);
    this.snapshotting = true;
    return pre;
  }

  /** A snapshot finished reading the table (or gave up); the last one out removes the tombstones. */
  releaseView(pre: PreImages): void {
    const i = this.views.indexOf(pre);
    if (i < 0) return;
    this.views.splice(i, 1);
    this.snapshotting = this.views.length > 0;
    pre.clear();
    if (this.views.length > 0 || this.tombstones.length === 0) return;
    for (const k of this.tombstones) if (this.map.get(k) === undefined) this.map.delete(k);
    this.tombstones = [];
  }

  /** snapshots in progress over this table (for tests) */
  get openViews(): number {
    return this.views.length;
  }

  clear(): void {
    this.map.clear();
    for (const pre of this.views) pre.clear();
    this.views = [];
    this.snapshotting = false;
    this.tombstones = [];
  }
}

/**
 * A deep copy of what the codec can encode (arrays, plain objects, Map, Set, Date, typed
 * arrays), so the snapshot keeps the value as of the barrier. Primitives are immutable and
 * returned as they are; so is anything the codec refuses (a class instance), which then fails
 * the checkpoint with the codec's error as it would without the copy.
 */
export function copyValue(v: unknown): unknown {
  if (typeof v !== 'object' || v === null) return v;
  if (Array.isArray(v)) {
    const out = new Array<unknown>(v.length);
    for (let i = 0; i < v.length; i++) out[i] = copyValue(v[i]);
    return out;
  }
  const proto = Object.getPrototypeOf(v) as object | null;
  if (proto === Object.prototype || proto === null) {
    const out: Record<string, unknown> =
      proto === null ? (Object.create(null) as Record<string, unknown>) : {};
    for (const k of Object.keys(v)) out[k] = copyValue((v as Record<string, unknown>)[k]);
    return out;
  }
  if (v instanceof Map) {
    const out = new Map<unknown, unknown>();
    for (const [k, x] of v) out.set(copyValue(k), copyValue(x));
    return out;
  }
  if (v instanceof Set) {
    const out = new Set<unknown>();
    for (const x of v) out.add(copyValue(x));
    return out;
  }
  if (v instanceof Date) return new Date(v.getTime());
  if (Buffer.isBuffer(v)) return Buffer.from(v);
  if (ArrayBuffer.isView(v)) return structuredClone(v);
  return v;
}
