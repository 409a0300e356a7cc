import { keyGroupOf } from './key-layout.js';

/** What changed since a point in time, per key group: RocksDB keys ('k' + key) and cleared map prefixes ('p' + prefix), latin1. */
interface ChangeSegment {
  /** the checkpoint whose synchronous part froze this segment (0 while it is the current one) */
  id: number;
  /** everything may have changed (at the start, after a restore that is not reused, or when tracking overflowed) */
  all: boolean;
  keys: Map<number, Set<string>>;
  count: number;
}

function emptySegment(all: boolean): ChangeSegment {
  return { id: 0, all, keys: new Map(), count: 0 };
}

/** What an incremental checkpoint must upload: everything, or these tracked keys per key group. */
export interface Changes {
  all: boolean;
  changed: Map<number, Set<string>>;
}

/**
 * The RocksDB keys changed since the last completed checkpoint, per key group (the role of
 * the SST-file diff in Flink's RocksIncrementalSnapshotStrategy, done per key here). Each
 * snapshot freezes the current segment; a completed checkpoint drops the segments it covers,
 * so an aborted checkpoint's changes are uploaded by the next one. Past maxTrackedKeys it
 * gives up remembering keys and the next checkpoint is full.
 */
export class ChangeTracker {
  /** changes since the synchronous part of the last incremental snapshot; starts as "everything" */
  private tracking: ChangeSegment = emptySegment(true);
  /** segments frozen by snapshots whose checkpoints have not completed yet, oldest first */
  private frozen: ChangeSegment[] = [];

  constructor(private readonly maxTrackedKeys = 200_000) {}

  /** Remembers a changed RocksDB key (or a cleared map prefix) for the next incremental checkpoint. */
  track(key: Buffer, kind: 'k' | 'p'): void {
    const t = this.tracking;
    if (t.all) return;
    const g = keyGroupOf(key);
    let set = t.keys.get(g);
    if (!set) t.keys.set(g, (set = new Set()));
    const before = set.size;
    set.add(kind + key.toString('latin1'));
    if (set.size > before && ++t.count > this.maxTrackedKeys) {
      // too many to remember one by one: the next checkpoint rewrites every key group
      t.all = true;
      t.keys.clear();
      t.count = 0;
    }
  }

  /** Freezes the current segment for checkpoint n; returns everything not covered by the last completed checkpoint. */
  freeze(checkpointId: number): Changes {
    const seg = this.tracking;
    seg.id = checkpointId;
    this.frozen.push(seg);
    this.tracking = emptySegment(false);
    // everything that changed since the last completed checkpoint: the segments not covered by it
    let all = false;
    const changed = new Map<number, Set<string>>();
    for (const s of this.frozen) {
      if (s.all) all = true;
      if (all) continue;
      for (const [g, keys] of s.keys) {
        const have = changed.get(g);
        if (!have) changed.set(g, keys);
        else changed.set(g, new Set([...have, ...keys]));
      }
    }
    return { all, changed };
  }

  /** Checkpoint n completed: the segments it covers are no longer needed. */
  completed(checkpointId: number): void {
    this.frozen = this.frozen.filter((s) => s.id > checkpointId);
  }

  /** The state now equals a restored checkpoint: nothing has changed since it. */
  reset(): void {
    this.tracking = emptySegment(false);
    this.frozen = [];
  }
}
