import {
  StorageError,
  asBuffer,
  decodeRecords,
  resolveHandlePath,
  storageUri,
  type IncrementalKeyedHandle,
  type SharedFileHandle,
} from '@weir/core/runtime';
import type { KeyedStateBackend } from './keyed-state-backend.js';
import { taskCheckpointStorage } from './local-recovery-storage.js';

/*
 * Incremental checkpoints of keyed state: the format of their handles and of their delta
 * batches, shared by the RocksDB backend (which writes them) and restore (which reads them).
 *
 * A checkpoint's keyed state is, per key group, a *chain*: optionally one full batch (the
 * canonical format: `[stateName, key, value]` entries) followed by delta batches, oldest first.
 * Each batch lives in a shared file (`<job>/shared/...`) written by the checkpoint that first
 * needed it; later checkpoints reference it again while its key group is unchanged, and append
 * a delta for a key group that changed a little. Restoring a key group applies its chain in
 * order. The JobManager counts, per shared file, the retained checkpoints that reference it
 * (SharedStateRegistry) and deletes the file when none does.
 */

// the handle types are the shared checkpoint contract of @weir/core; re-exported for the backends
export type { ChainLink, IncrementalKeyedHandle, SharedFileHandle } from '@weir/core/runtime';

/** Delta operations, each a msgpack array whose first element is the op code. */
export const DeltaOp = {
  /** [0, state, key, value]: the key's value (value, list, reducing, aggregating state) */
  PUT: 0,
  /** [1, state, key]: the key has no state any more (map state: every entry of the key's map) */
  DELETE_KEY: 1,
  /** [2, state, key, userKey, userValue]: one map entry */
  MAP_PUT: 2,
  /** [3, state, key, userKey]: one map entry removed */
  MAP_REMOVE: 3,
} as const;

/** A chain link resolved to its file. */
export interface ResolvedLink {
  file: SharedFileHandle;
  offset: number;
  length: number;
  full: boolean;
}

/**
 * Every shared file the handles reference, with the links of the key groups in `wanted`, so a
 * restore reads each file once and only the files it needs.
 */
export function linksByGroup(
  handles: IncrementalKeyedHandle[],
  wanted: (kg: number) => boolean,
): Map<number, ResolvedLink[]> {
  const out = new Map<number, ResolvedLink[]>();
  for (const h of handles) {
    for (const [kg, chain] of Object.entries(h.groups)) {
      const g = Number(kg);
      if (!wanted(g)) continue;
      out.set(
        g,
        chain.map(([fi, offset, length, full]) => {
          const file = h.files[fi];
          if (!file)
            throw new Error(`Incremental state handle refers to file #${fi}, but it lists ${h.files.length}`);
          return { file, offset, length, full: full === 1 };
        }),
      );
    }
  }
  return out;
}

/**
 * Shared files read ahead while one is applied: the next file downloads (S3 reads each in
 * parallel ranges already) while RocksDB takes the current one, and at most this many files of
 * up to 64 MiB are held at once.
 */
const RESTORE_READ_AHEAD = 2;

/** One full batch of a snapshot into a backend: as bytes where the backend takes them. */
export function restoreFullBatch(
  backend: KeyedStateBackend,
  kinds: Record<string, string>,
  bytes: Uint8Array,
): void {
  if (backend.restoreEntriesBytes) backend.restoreEntriesBytes(kinds, asBuffer(bytes));
  else backend.restoreEntries(kinds, decodeRecords(bytes));
}

/**
 * Restores the key groups in range from incremental handles: applies every key group's chain
 * (a full batch, then deltas), reading each shared file once and verifying its checksum, oldest
 * file first, so the links of every chain are applied in order. `root` is the URI of the
 * checkpoint's directory, which the handles' paths are relative to.
 */
export async function restoreIncrementalState(
  root: string,
  handles: IncrementalKeyedHandle[],
  backend: KeyedStateBackend,
  inRange: (kg: number) => boolean,
): Promise<void> {
  const byFile = new Map<string, { file: SharedFileHandle; links: ResolvedLink[] }>();
  for (const links of linksByGroup(handles, inRange).values()) {
    for (const l of links) {
      let f = byFile.get(l.file.path);
      if (!f) byFile.set(l.file.path, (f = { file: l.file, links: [] }));
      f.links.push(l);
    }
  }
  const kinds = Object.assign({}, ...handles.map((h) => h.kinds)) as Record<string, string>;
  const files = [...byFile.values()].sort((a, b) => a.file.checkpointId - b.file.checkpointId);
  // read ahead, applied oldest file first (chain order)
  const reads = files.map(() => undefined as Promise<Buffer> | undefined);
  const readAt = (i: number): void => {
    const f = files[i];
    if (!f) return;
    const where = resolveHandlePath(root, f.file.path);
    (reads[i] = taskCheckpointStorage(where.root).read(where.path, f.file.sha256)).catch(() => {});
  };
  for (let i = 0; i < RESTORE_READ_AHEAD; i++) readAt(i);
  for (let i = 0; i < files.length; i++) {
    const { file, links } = files[i]!;
    const where = resolveHandlePath(root, file.path);
    const data = await reads[i]!;
    reads[i] = undefined;
    readAt(i + RESTORE_READ_AHEAD);
    for (const l of links) {
      if (l.offset + l.length > data.byteLength)
        throw new StorageError(
          'CORRUPT',
          `Checkpoint file ${storageUri(where.root)}/${where.path} is truncated`,
        );
      const bytes = data.subarray(l.offset, l.offset + l.length);
      if (!l.full) backend.restoreDelta(kinds, decodeRecords(bytes));
      else restoreFullBatch(backend, kinds, bytes);
    }
  }
}
