import { ITERATOR_OPTIONS, NO_OPTIONS, type RocksDB, type RocksIterator } from './binding.js';

/**
 * Prefix reads (a map's entries) through one open iterator, moved by a seek, for as long as the
 * database takes no write. A fresh iterator per read costs RocksDB's NewIterator with its first
 * seek plus the binding's bookkeeping, which made a read of a three-entry map two to three times
 * as expensive (bench/map-iteration.ts, bench/README.md). An iterator sees the database as of
 * its creation, so it is reused only while the database's sequence number (one per write) is
 * the one it opened at; an iterator a write made stale is closed, never reused.
 */
export class PrefixReader {
  private idle: RocksIterator | undefined;
  private idleAt = -1;

  constructor(readonly db: RocksDB) {}

  /**
   * The rows under prefix, in key order, read in chunks as they are consumed: a consistent view
   * from the first read. Chunks start small and double: the iterator is unbounded, so the rows
   * past the prefix in a chunk are read and dropped (each row read costs the binding a copy and
   * a Buffer, a few µs), and most maps are small.
   */
  *rows(prefix: Buffer, first = 4, chunk = 256): Generator<[Buffer, Buffer]> {
    const seq = this.db.sequence;
    let it = this.idle;
    if (it !== undefined && this.idleAt === seq) this.idle = undefined;
    else {
      this.release();
      it = this.db.iterator(ITERATOR_OPTIONS);
    }
    const plen = prefix.length;
    let size = first;
    try {
      it._seekSync(prefix);
      for (;;) {
        const { rows, finished } = it._nextvSync(size, NO_OPTIONS);
        for (let j = 0; j < rows.length; j += 2) {
          const k = rows[j]!;
          if (k.length < plen || prefix.compare(k, 0, plen) !== 0) return;
          yield [k, rows[j + 1]!];
        }
        if (finished || rows.length === 0) return;
        size = Math.min(chunk, size * 2);
      }
    } finally {
      // kept for the next read while nothing was written since it opened (also after a consumer
      // stopped early: the next read seeks anyway); otherwise closed
      if (this.idle === undefined && this.db.sequence === seq) {
        this.idle = it;
        this.idleAt = seq;
      } else void it.close();
    }
  }

  /** Closes the kept iterator (it pins RocksDB's memtables and files as of its creation). */
  release(): void {
    const it = this.idle;
    this.idle = undefined;
    this.idleAt = -1;
    if (it) void it.close();
  }
}
