import {
  linksByGroup,
  type ChainLink,
  type IncrementalKeyedHandle,
  type ResolvedLink,
  type SharedFileHandle,
} from '../incremental-snapshot.js';
import type { SharedFileWriter } from '../keyed-state-backend.js';
import type { RocksIterator } from './binding.js';
import type { ChangedKeys, OpBatch } from './change-tracker.js';
import { deltaBatches, scanCanonical, type StateNames } from './snapshot-batches.js';

/*
 * The RocksDB backend's side of incremental checkpoints: per key group a chain of batches in
 * shared files (see incremental-snapshot.ts), which key groups a checkpoint rewrites whole and
 * which get a delta, and writing them.
 */

/** One link of a key group's chain as the backend keeps it. */
type Link = ResolvedLink;

export interface Chains {
  groups: Map<number, Link[]>;
  /** entries of the group's last full batch (-1 unknown), bytes of it and of its deltas */
  stats: Map<number, { entries: number; fullBytes: number; deltaBytes: number }>;
}

export function emptyChains(): Chains {
  return { groups: new Map(), stats: new Map() };
}

/** The handle of a checkpoint's chains: every file they reference, once, and the links by index. */
function chainsToHandle(
  chains: { groups: Map<number, ResolvedLink[]> },
  kinds: Record<string, string>,
  uploaded: number,
): IncrementalKeyedHandle {
  const files: SharedFileHandle[] = [];
  const indexOf = new Map<string, number>();
  const groups: Record<string, ChainLink[]> = {};
  let fullSize = 0;
  for (const [g, links] of [...chains.groups].sort((a, b) => a[0] - b[0])) {
    groups[g] = links.map((l) => {
      let i = indexOf.get(l.file.path);
      if (i === undefined) {
        indexOf.set(l.file.path, (i = files.length));
        files.push({
          path: l.file.path,
          size: l.file.size,
          sha256: l.file.sha256,
          checkpointId: l.file.checkpointId,
        });
      }
      fullSize += l.length;
      return [i, l.offset, l.length, l.full ? 1 : 0];
    });
  }
  return { format: 'incremental', kinds, files, groups, checkpointedSize: uploaded, fullSize };
}

/**
 * Which changed key groups a checkpoint writes whole and which get a delta of their changed keys.
 * Chains are capped between half the maximum and the maximum, staggered by key group, so the key
 * groups written whole by one checkpoint are not all rewritten again by one later.
 */
export function planGroups(
  base: Chains,
  changed: Map<number, ChangedKeys>,
  maxChainLength: number,
): { fullGroups: number[]; deltaGroups: Array<[number, ChangedKeys]> } {
  const fullGroups: number[] = [];
  const deltaGroups: Array<[number, ChangedKeys]> = [];
  const half = Math.ceil(maxChainLength / 2);
  for (const [g, keys] of [...changed].sort((a, b) => a[0] - b[0])) {
    const st = base.stats.get(g);
    const chain = base.groups.get(g) ?? [];
    const maxChain = half + ((Math.imul(g + 1, 0x9e3779b1) >>> 0) % half);
    // a large key group's full state spans several links: they count as one
    let links = 1;
    for (const l of chain) if (!l.full) links++;
    // rewrite a key group whole when most of it must be read back (recorded operations are
    // not read: see OpLog), when its deltas would outgrow its full batch, or at the chain's cap
    const toRead = keys.size - (keys.opCount ?? 0);
    const rewrite =
      st !== undefined &&
      ((st.entries > 0 && toRead * 2 >= st.entries) ||
        st.deltaBytes + (keys.opBytes ?? 0) > st.fullBytes ||
        links >= maxChain);
    if (rewrite) fullGroups.push(g);
    else deltaGroups.push([g, keys]);
  }
  return { fullGroups, deltaGroups };
}

/** The chains of a restored incremental checkpoint (this subtask's key groups), as a base. */
export function restoredChains(handles: IncrementalKeyedHandle[], inRange: (kg: number) => boolean): Chains {
  const groups = linksByGroup(handles, inRange);
  const stats = new Map<number, { entries: number; fullBytes: number; deltaBytes: number }>();
  for (const [g, links] of groups) {
    let fullBytes = 0;
    let deltaBytes = 0;
    for (const l of links) {
      if (l.full) fullBytes += l.length;
      else deltaBytes += l.length;
    }
    stats.set(g, { entries: -1, fullBytes, deltaBytes });
  }
  return { groups, stats };
}

export interface IncrementalUpload {
  checkpointId: number;
  write: SharedFileWriter;
  /** everything changed: scans is one iterator over the whole database, and there is no base */
  all: boolean;
  base: Chains;
  /** key group (-1: all of them) and a view of it, for the groups written whole */
  scans: Array<[number, RocksIterator]>;
  deltaView: RocksIterator | undefined;
  deltaGroups: Array<[number, ChangedKeys]>;
  kinds: Record<string, string>;
  names: StateNames;
  maxSharedFileBytes: number;
  /** a batch (one link) is closed at about this size; a key group may span several */
  maxBatchBytes?: number;
  isClosed: () => boolean;
}

/** Delta batches of recorded operations (see OpLog): an array32 header and the operations. */
function recordedBatches(ops: OpBatch[]): Array<{ bytes: Buffer }> {
  return ops.map(({ bytes, count }) => {
    const header = Buffer.allocUnsafe(5);
    header[0] = 0xdd;
    header.writeUInt32BE(count, 1);
    return { bytes: Buffer.concat([header, bytes]) };
  });
}

function* concatIterables<T>(a: Iterable<T>, b: Iterable<T>): Generator<T> {
  yield* a;
  yield* b;
}

/**
 * The asynchronous part of an incremental checkpoint: writes the full batches and deltas into
 * shared files of at most maxSharedFileBytes, and returns the new chains (the next base, once
 * the checkpoint completes) and their handle (undefined when there is no state).
 */
export async function uploadIncremental(u: IncrementalUpload): Promise<{
  next: Chains;
  handle: IncrementalKeyedHandle | undefined;
}> {
  const { checkpointId, write, all, base, names } = u;
  const maxFile = u.maxSharedFileBytes;
  const next: Chains = all ? emptyChains() : { groups: new Map(base.groups), stats: new Map(base.stats) };
  // the shared file being filled: its batches, and the links that point into it
  let parts: Buffer[] = [];
  let size = 0;
  let file: SharedFileHandle = { path: '', size: 0, sha256: '', checkpointId };
  let fileNo = 0;
  let uploaded = 0;
  const closeFile = async (): Promise<void> => {
    if (size === 0) return;
    const h = await write(`${fileNo++}`, parts);
    Object.assign(file, h, { checkpointId });
    uploaded += h.size;
    parts = [];
    size = 0;
    file = { path: '', size: 0, sha256: '', checkpointId };
  };
  const add = async (bytes: Buffer, full: boolean): Promise<Link> => {
    const link: Link = { file, offset: size, length: bytes.byteLength, full };
    parts.push(bytes);
    size += bytes.byteLength;
    if (size >= maxFile) await closeFile();
    return link;
  };
  for (const [g, it] of u.scans) {
    // the key groups this scan met: their first batch starts a new chain, later ones extend it
    const seen = new Set<number>();
    await scanCanonical(
      it,
      names,
      async (group, bytes, entries) => {
        const link = await add(bytes, true);
        const st = next.stats.get(group);
        if (seen.has(group) && st) {
          next.groups.get(group)!.push(link);
          st.entries += entries;
          st.fullBytes += bytes.byteLength;
        } else {
          seen.add(group);
          next.groups.set(group, [link]);
          next.stats.set(group, { entries, fullBytes: bytes.byteLength, deltaBytes: 0 });
        }
      },
      u.isClosed,
      u.maxBatchBytes,
    );
    // a key group that is empty now has no chain
    if (seen.size === 0 && g >= 0) {
      next.groups.delete(g);
      next.stats.delete(g);
    }
  }
  let done = 0;
  for (const [g, keys] of u.deltaGroups) {
    let chain: Link[] | undefined;
    let st: { entries: number; fullBytes: number; deltaBytes: number } | undefined;
    // the operations recorded as they were written, then the tracked keys' state in the view
    const batches = keys.ops ? recordedBatches(keys.ops) : [];
    for (const { bytes } of concatIterables(
      batches,
      deltaBatches(u.deltaView!, keys, names, u.maxBatchBytes),
    )) {
      chain ??= [...(base.groups.get(g) ?? [])];
      st ??= { ...(base.stats.get(g) ?? { entries: -1, fullBytes: 0, deltaBytes: 0 }) };
      chain.push(await add(bytes, false));
      st.deltaBytes += bytes.byteLength;
    }
    if (chain && st) {
      next.groups.set(g, chain);
      next.stats.set(g, st);
    }
    done += keys.size;
    if (done >= 2048) {
      // let records through between chunks of point reads
      done = 0;
      await new Promise<void>((resolve) => setImmediate(resolve));
      if (u.isClosed()) throw new Error('The task ended while its RocksDB state was being snapshotted');
    }
  }
  await closeFile();
  return { next, handle: next.groups.size === 0 ? undefined : chainsToHandle(next, u.kinds, uploaded) };
}
