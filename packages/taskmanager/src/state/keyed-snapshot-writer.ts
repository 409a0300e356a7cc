import { writeChunks, type CheckpointStorage, type StateHandle } from '@weir/core/runtime';
import { snapshotFileChunks } from './heap-snapshot.js';
import type { KeyGroupBatch, KeyedStateBatches } from './keyed-state-backend.js';

/** Ends the writing of a snapshot whose checkpoint was aborted (or whose task ended) meanwhile. */
export class SnapshotWriteStoppedError extends Error {}

/**
 * Writes a keyed snapshot produced batch by batch as one canonical file, streamed to storage
 * (no whole-state buffer); undefined, and no file, when there is no state. `stopped` is asked
 * before each batch: once it says so the writing ends with SnapshotWriteStoppedError, which
 * releases the snapshot's views.
 */
export async function writeKeyedSnapshot(
  storage: CheckpointStorage,
  relPath: string,
  kb: KeyedStateBatches,
  stopped: () => string | undefined = () => undefined,
): Promise<{ handle: StateHandle; index: Record<number, number[]> } | undefined> {
  const index: Record<number, number[]> = {};
  async function* untilStopped(): AsyncGenerator<KeyGroupBatch> {
    for await (const b of kb.batches) {
      const why = stopped();
      if (why !== undefined) throw new SnapshotWriteStoppedError(why);
      yield b;
    }
  }
  const it = snapshotFileChunks(untilStopped(), index);
  const first = await it.next();
  if (first.done) return undefined;
  const chunks = (async function* () {
    yield first.value;
    yield* it;
  })();
  const handle = await writeChunks(storage, relPath, chunks);
  kb.release?.();
  return { handle, index };
}
