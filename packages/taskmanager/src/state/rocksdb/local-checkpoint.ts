import {
  closeSync,
  copyFileSync,
  linkSync,
  mkdirSync,
  openSync,
  readFileSync,
  readSync,
  readdirSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import path from 'node:path';

/**
 * A RocksDB database directory kept on local disk as it was at a checkpoint, for local recovery
 * (Flink keeps a native RocksDB checkpoint there). A restore from snapshot batches writes every
 * row again (about 1.7M rows/s, seconds at millions of keys); a restore from this opens the
 * database where it stood.
 *
 * The binding has no checkpoint call, so the copy is taken the way RocksDB's own Checkpoint
 * takes one: at the checkpoint's synchronous part (the write buffer just written, no write
 * until it returns) every file of the database is hard-linked, and the sizes of the files
 * RocksDB appends to (the write-ahead logs, the MANIFEST) are recorded. Table files never change
 * once written; of the appended files, the restore copies only the recorded prefix, which is
 * everything written before the checkpoint. Taking it costs a link per file (under a
 * millisecond); the linked files hold disk space until the next checkpoint's copy replaces it.
 *
 * A flush or compaction finishing while the links are made could leave a copy whose MANIFEST
 * names a file that was not linked, or a log that was already deleted. The copy is taken again
 * when RocksDB's super-version number moved meanwhile, and a restore proves it: the database
 * must open (RocksDB checks every table file the MANIFEST names) and its latest sequence number
 * must be the recorded one (every write up to the checkpoint replayed, none after). A copy that
 * fails either is not used; the restore reads the checkpoint's files instead.
 */

/** What a local checkpoint records beside its links. */
export interface LocalCheckpointMeta {
  checkpointId: number;
  maxParallelism: number;
  /** RocksDB's latest sequence number at the checkpoint: what the restored database must show */
  sequence: string;
  /** the states, in the order of their ids (ids are 1, 2, ... in registration order) */
  states: Array<[name: string, kind: string]>;
  /** file name and its size at the checkpoint */
  files: Array<[string, number]>;
}

const META = 'weir-local-checkpoint.json';
/** files of the live database not part of a copy: its lock and its info logs */
const SKIPPED = /^(LOCK|LOG(\.old.*)?)$/;

export function localCheckpointDir(root: string, checkpointId: number): string {
  return path.join(root, `chk-${checkpointId}`);
}

/** Files RocksDB replaces under the same name (CURRENT is renamed over when the MANIFEST rolls). */
const RENAMED_OVER = /^(CURRENT|IDENTITY)$/;

/** how many times the links are brought up to date before the copy is given up */
const LINK_ROUNDS = 20;

/**
 * Links the files of the open database in `dbDir` into `target` (a directory that must not
 * exist yet) and writes the record last, so a copy without it is incomplete.
 *
 * The copy must be one version of the database: while RocksDB installs a flush or compaction
 * (the MANIFEST appended to, files added, inputs deleted), a listing can miss a file the
 * MANIFEST names. `stable` (RocksDB's super-version number) is asked before and after a round
 * of links; when it changed, another round links only what is new (and CURRENT and IDENTITY
 * again), so rounds stay short even under constant compaction (a 100M-key database saw three
 * full rounds in a row interrupted). In a round where nothing was installed, every file of
 * that version exists throughout and is linked; links to files gone from the database by then
 * (obsolete inputs) are dropped. Returns the record; throws after LINK_ROUNDS rounds.
 */
export function takeLocalCheckpoint(
  dbDir: string,
  target: string,
  meta: Omit<LocalCheckpointMeta, 'files'>,
  stable: () => string,
): LocalCheckpointMeta {
  rmSync(target, { recursive: true, force: true });
  mkdirSync(target, { recursive: true });
  const linked = new Set<string>();
  for (let round = 0; round < LINK_ROUNDS; round++) {
    const before = stable();
    const names = readdirSync(dbDir).filter((n) => !SKIPPED.test(n));
    for (const name of names) {
      if (linked.has(name) && !RENAMED_OVER.test(name)) continue;
      const to = path.join(target, name);
      if (linked.delete(name)) rmSync(to, { force: true });
      try {
        linkSync(path.join(dbDir, name), to);
      } catch (e) {
        // deleted since the listing: obsolete then (a compaction's input, a flushed log)
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') continue;
        throw e;
      }
      linked.add(name);
    }
    // the sizes inside the round: the logs hold every write before the checkpoint (none comes
    // while it is taken), the MANIFEST what was installed before `stable` said so again
    const present = new Set(names);
    const sizes = new Map<string, number>();
    for (const name of sizeOrder(linked))
      if (present.has(name)) sizes.set(name, statSync(path.join(target, name)).size);
    const files = [...sizes].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
    if (stable() !== before) continue;
    for (const name of linked) if (!present.has(name)) rmSync(path.join(target, name), { force: true });
    const record: LocalCheckpointMeta = { ...meta, files };
    writeFileSync(path.join(target, META), JSON.stringify(record));
    return record;
  }
  rmSync(target, { recursive: true, force: true });
  throw new Error(
    `RocksDB installed a flush or compaction during each of ${LINK_ROUNDS} rounds of linking its files`,
  );
}

/**
 * The order a round records the linked files' sizes in: the MANIFEST first. A flush writes its
 * table file whole before the MANIFEST edit that names it, so every file the recorded MANIFEST
 * prefix names was complete before its own size is taken; sized the other way round, a flush
 * finishing in between could leave a prefix naming a table file recorded short.
 */
export function sizeOrder(names: Iterable<string>): string[] {
  const manifestFirst = (n: string): number => (n.startsWith('MANIFEST-') ? 0 : 1);
  return [...names].sort((a, b) => manifestFirst(a) - manifestFirst(b) || (a < b ? -1 : a > b ? 1 : 0));
}

/** The record of the local checkpoint in `dir`; undefined when there is none, or why it cannot be used. */
export function readLocalCheckpoint(dir: string): LocalCheckpointMeta | string | undefined {
  let text: string;
  try {
    text = readFileSync(path.join(dir, META), 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    return code === 'ENOENT' || code === 'ENOTDIR'
      ? undefined
      : `the local RocksDB checkpoint in ${dir} cannot be read (${(e as Error).message})`;
  }
  try {
    const m = JSON.parse(text) as LocalCheckpointMeta;
    if (typeof m.sequence !== 'string' || !Array.isArray(m.files) || !Array.isArray(m.states))
      throw new Error('fields missing');
    return m;
  } catch (e) {
    return `the record of the local RocksDB checkpoint in ${dir} is corrupt (${(e as Error).message})`;
  }
}

/**
 * Lays the local checkpoint in `dir` out as a database directory `dbDir` (which must not exist):
 * table files linked, the appended files copied up to their recorded size, so the copy stays as
 * it is for a later restore whatever the opened database does. Returns the bytes it stands for.
 */
export function materializeLocalCheckpoint(dir: string, meta: LocalCheckpointMeta, dbDir: string): number {
  return layOut(dir, meta.files, dbDir);
}

/** Table files linked, the others copied up to their size; the bytes they stand for. */
function layOut(dir: string, files: ReadonlyArray<[string, number]>, dbDir: string): number {
  mkdirSync(dbDir, { recursive: true });
  let bytes = 0;
  for (const [name, size] of files) {
    if (name.includes('/') || name.includes('\\') || name === '..' || name === '.')
      throw new Error(`the local RocksDB checkpoint names a file outside it: ${name}`);
    const from = path.join(dir, name);
    const to = path.join(dbDir, name);
    bytes += size;
    if (name.endsWith('.sst')) linkSync(from, to);
    else if (statSync(from).size === size) copyFileSync(from, to);
    else copyPrefix(from, to, size);
  }
  return bytes;
}

/** Where a local checkpoint keeps its recovered form (see recoverLocalCheckpoint). */
const RECOVERED = 'recovered';

/**
 * Replays the local checkpoint's logs once, off the record path, into `<dir>/recovered`: the
 * database opened (RocksDB replays the logs and writes their rows to a table file) and closed
 * again. A restore opens that form without the replay, which took most of a restore's time
 * (about 0.2 s for 6 MB of logs on a 10M-key database); the copy as taken stays the fallback.
 * `open` opens an existing database directory.
 */
export async function recoverLocalCheckpoint(
  dir: string,
  meta: LocalCheckpointMeta,
  open: (dbDir: string) => Promise<{ readonly sequence: number; close(): Promise<void> }>,
): Promise<void> {
  const staging = path.join(dir, `${RECOVERED}.tmp`);
  rmSync(staging, { recursive: true, force: true });
  materializeLocalCheckpoint(dir, meta, staging);
  const db = await open(staging);
  const sequence = String(db.sequence);
  await db.close();
  if (sequence !== meta.sequence) {
    rmSync(staging, { recursive: true, force: true });
    throw new Error(`recovered at sequence number ${sequence}, not ${meta.sequence}`);
  }
  renameSync(staging, path.join(dir, RECOVERED));
}

/**
 * Lays the recovered form of the local checkpoint in `dir` out as the database `dbDir` (table
 * files linked, the rest copied: nothing appends to them any more); undefined when it has none.
 */
export function materializeRecovered(dir: string, dbDir: string): number | undefined {
  const from = path.join(dir, RECOVERED);
  let names: string[];
  try {
    names = readdirSync(from);
  } catch {
    return undefined;
  }
  const files = names
    .filter((n) => !SKIPPED.test(n))
    .map((n): [string, number] => [n, statSync(path.join(from, n)).size]);
  return layOut(from, files, dbDir);
}

/** Copies the first `size` bytes of `from` (a log RocksDB went on appending to after the checkpoint). */
function copyPrefix(from: string, to: string, size: number): void {
  const src = openSync(from, 'r');
  const dst = openSync(to, 'wx');
  try {
    const buf = Buffer.allocUnsafe(Math.min(size, 1 << 20));
    let at = 0;
    while (at < size) {
      const n = readSync(src, buf, 0, Math.min(buf.byteLength, size - at), at);
      if (n === 0) throw new Error(`${from} is shorter than the ${size} bytes the local checkpoint recorded`);
      writeSync(dst, buf, 0, n);
      at += n;
    }
  } finally {
    closeSync(src);
    closeSync(dst);
  }
}

/** Removes the local checkpoints under `root` whose id `drop` says. */
export function dropLocalCheckpoints(root: string, drop: (checkpointId: number) => boolean): void {
  let names: string[];
  try {
    names = readdirSync(root);
  } catch {
    return;
  }
  for (const n of names) {
    const m = /^chk-(\d+)$/.exec(n);
    if (m && drop(Number(m[1]))) rmSync(path.join(root, n), { recursive: true, force: true });
  }
}
