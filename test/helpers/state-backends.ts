import { rmSync } from 'node:fs';
import { HeapKeyedStateBackend } from '../../packages/taskmanager/src/state/heap-keyed-state-backend.js';
import type { KeyedStateBackend } from '../../packages/taskmanager/src/state/keyed-state-backend.js';
import {
  RocksDBKeyedStateBackend,
  rocksDBDirectory,
} from '../../packages/taskmanager/src/state/rocksdb-keyed-state-backend.js';
import { tempDir } from './cli.js';

export const MAX_P = 128;

/**
 * Opens keyed state backends for a test file: the heap one, or RocksDB on real files under one
 * temp directory with the given buffer and cache bounds. `dispose()` closes them and removes it.
 */
export class TestBackends {
  private readonly root = tempDir('weir-state-');
  private readonly opened: KeyedStateBackend[] = [];
  private seq = 0;

  async open(
    kind: 'heap' | 'rocksdb',
    bounds: { maxBufferedEntries?: number; maxCachedEntries?: number; readCacheBytes?: number } = {},
  ): Promise<KeyedStateBackend> {
    if (kind === 'rocksdb') return this.rocks(bounds);
    const b = new HeapKeyedStateBackend();
    await b.open();
    this.opened.push(b);
    return b;
  }

  /** A RocksDB backend of its own directory, with small caches unless `options` say otherwise. */
  async rocks(
    options: Partial<ConstructorParameters<typeof RocksDBKeyedStateBackend>[0]> = {},
  ): Promise<RocksDBKeyedStateBackend> {
    const b = new RocksDBKeyedStateBackend({
      directory: rocksDBDirectory(this.root, {
        jobId: 'j',
        operatorId: 'op',
        subtaskIndex: this.seq++,
        attemptNumber: 0,
      }),
      maxParallelism: MAX_P,
      blockCacheSize: 1 << 20,
      writeBufferSize: 1 << 20,
      ...options,
    });
    await b.open();
    this.opened.push(b);
    return b;
  }

  async dispose(): Promise<void> {
    for (const b of this.opened) await b.dispose();
    rmSync(this.root, { recursive: true, force: true });
  }
}
