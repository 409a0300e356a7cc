import type { KeyRange, RocksBatch } from './binding.js';
import type { StateMeta } from './held-values.js';

/** Kinds of the backend's states that event-time code keeps in its database. */
export type EventTimeStateKind = 'namespaced' | 'timers';

/** Writes buffered outside the states' own buffers (timer queues), written in the backend's flush batch. */
export interface RocksWriteBuffer {
  /** puts and deletes everything buffered into batch, tells track each key, and empties itself */
  writeTo(batch: RocksBatch, track: ((key: Buffer) => void) | undefined): void;
  /** a restore wrote rows into the database (what the owner cached from it may be stale) */
  restored?(): void;
}

/**
 * What namespaced state and timer queues need of the RocksDB keyed backend
 * (RocksDBKeyedStateBackend.eventTimeHost()): its database, its state ids, and its write
 * buffer, so their rows are in the backend's snapshots, incremental checkpoints and restores
 * like those of its other states.
 */
export interface RocksEventTimeHost {
  readonly maxParallelism: number;
  /** the state's id and buffers; the same meta for the same name (restore registers it first) */
  register(name: string, kind: EventTimeStateKind): StateMeta;
  /** every state of a kind, registered here or by a restore */
  statesOf(kind: EventTimeStateKind): StateMeta[];
  /** counts one more buffered entry (flushing when the buffer is full) */
  bufferedOne(): void;
  /** writes every buffer to RocksDB in one batch */
  flush(): void;
  addWriteBuffer(buffer: RocksWriteBuffer): void;
  getBytes(key: Buffer): Buffer | undefined;
  /** the rows under prefix as consumed, through the backend's kept iterator (see PrefixReader; from RocksDB only) */
  rows(prefix: Buffer): Generator<[Buffer, Buffer]>;
  /** rows of a key range in key order (from RocksDB only: flush first to see buffered writes) */
  forEachInRange(range: KeyRange, fn: (key: Buffer, value: Buffer) => boolean | void, chunk?: number): void;
  /** writes a batch now (restore), recording the keys for the next incremental checkpoint */
  writeNow(fill: (batch: RocksBatch, track: (key: Buffer) => void) => void): void;
}
