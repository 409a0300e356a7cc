import { mkdir, open, readFile, readdir, rm, writeFile, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import {
  checkedRelativePath,
  createCheckpointStorage,
  sha256,
  storageUri,
  writeChunks,
  type CheckpointStorage,
  type Logger,
  type StateHandle,
  type StorageLocation,
} from '@weir/core/runtime';

/**
 * Local recovery (Flink's `state.backend.local-recovery` with its TaskLocalStateStore): every
 * checkpoint file a task writes to checkpoint storage is also kept in the TaskManager's local
 * directory, and a restore reads the local copy when it is there and its checksum matches the
 * handle, remote storage otherwise. The copy is a cache, never the only copy: a local directory
 * that is full or unwritable, or a copy that is missing, truncated or corrupt, means a read from
 * remote storage, logged with the reason. A checkpoint's own files are dropped once a newer
 * checkpoint completed; shared files of incremental checkpoints stay until the job's local
 * directory is removed.
 */
export class LocalRecoveryStorage implements CheckpointStorage {
  readonly root: string;
  readonly location: StorageLocation;
  /**
   * Where the copies of files under this root go: `<local dir>/file/<root path>` or
   * `<local dir>/s3/<bucket>/<prefix>`, so a file has one local place whichever of its parent
   * directories a handle names as the root (checkpoints are written under the job's storage
   * root and restored from a checkpoint's directory).
   */
  readonly dir: string;
  /** what restores read since the last `takeReadStats()` */
  private stats = newStats();

  constructor(
    private readonly remote: CheckpointStorage,
    localDir: string,
    private readonly log: Logger,
  ) {
    this.root = remote.root;
    this.location = remote.location;
    const loc = remote.location;
    this.dir =
      loc.scheme === 'file'
        ? path.join(localDir, 'file', loc.path)
        : path.join(localDir, 's3', loc.bucket, ...loc.prefix.split('/'));
  }

  /** The checkpoint storage itself, for files whose local copy is kept otherwise (native RocksDB files: hard links). */
  get remoteStorage(): CheckpointStorage {
    return this.remote;
  }

  private local(relPath: string): string {
    return path.join(this.dir, checkedRelativePath(relPath));
  }

  /** Writes to remote storage; the local copy is written beside it and never fails the write. */
  async write(relPath: string, data: Uint8Array): Promise<StateHandle> {
    const [handle] = await Promise.all([this.remote.write(relPath, data), this.keepLocal(relPath, data)]);
    return handle;
  }

  /**
   * A file produced piecewise (a heap snapshot): the chunks go to remote storage as they come
   * (streamed when it can) and are appended to the local copy on the way, so local recovery
   * keeps the snapshot streamed; a local failure drops the copy and never fails the write.
   */
  async writeStream(relPath: string, chunks: AsyncIterable<Uint8Array>): Promise<StateHandle> {
    const file = this.local(relPath);
    let fh: FileHandle | undefined;
    let failure: unknown;
    try {
      await mkdir(path.dirname(file), { recursive: true });
      fh = await open(file, 'w');
    } catch (err) {
      failure = err;
    }
    // appends in order, behind each other, without holding the remote write back
    let appended: Promise<void> = Promise.resolve();
    const copy = fh;
    async function* tee(): AsyncGenerator<Uint8Array> {
      for await (const c of chunks) {
        if (copy && failure === undefined)
          appended = appended
            .then(async () => {
              if (failure === undefined) await copy.write(c);
            })
            .catch((err: unknown) => void (failure ??= err));
        yield c;
      }
    }
    let ok = false;
    try {
      const handle = await writeChunks(this.remote, relPath, tee());
      ok = true;
      return handle;
    } finally {
      await appended;
      await fh?.close().catch((err: unknown) => void (failure ??= err));
      if (!ok || failure !== undefined) await rm(file, { force: true }).catch(() => {});
      if (failure !== undefined) this.cannotKeep(relPath, file, failure);
    }
  }

  private async keepLocal(relPath: string, data: Uint8Array): Promise<void> {
    const file = this.local(relPath);
    try {
      await mkdir(path.dirname(file), { recursive: true });
      // no fsync: a copy torn by a crash fails its checksum and the restore reads remote storage
      await writeFile(file, data);
    } catch (err) {
      await rm(file, { force: true }).catch(() => {});
      this.cannotKeep(relPath, file, err);
    }
  }

  private cannotKeep(relPath: string, file: string, err: unknown): void {
    this.log.warn(
      { file, err: (err as Error).message },
      `local recovery: cannot keep a local copy of checkpoint file ${relPath} in ${this.dir} (${(err as Error).message}); a restore of it reads remote storage. Free space in, or fix the permissions of, taskmanager.state.local.root-dirs`,
    );
  }

  /**
   * The local copy when it is there and matches `expectedSha256`; else remote storage. Without
   * a checksum to verify the copy against, always remote storage.
   */
  async read(relPath: string, expectedSha256?: string): Promise<Buffer> {
    if (expectedSha256) {
      const file = this.local(relPath);
      let why = '';
      try {
        const data = await readFile(file);
        if (sha256(data) === expectedSha256) {
          this.stats.localFiles++;
          this.stats.localBytes += data.byteLength;
          return data;
        }
        why = `the local copy ${file} is corrupt (checksum mismatch, ${data.byteLength} bytes)`;
        await rm(file, { force: true }).catch(() => {});
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code !== 'ENOENT' && code !== 'ENOTDIR')
          why = `the local copy ${file} cannot be read (${(err as Error).message})`;
      }
      if (why) this.fallBack(why, `reading ${relPath} from remote storage`);
    }
    const data = await this.remote.read(relPath, expectedSha256);
    this.stats.remoteFiles++;
    this.stats.remoteBytes += data.byteLength;
    return data;
  }

  /** A local copy could not be used (`instead`: what the restore does): said once, and counted for the restore's log line. */
  fallBack(why: string, instead: string): void {
    this.stats.fallbacks.push(why);
    this.log.warn({ fallback: why }, `local recovery: ${why}; ${instead}`);
  }

  /** A keyed state backend restored its own local checkpoint (RocksDB's files) in place of reading files. */
  restoredLocalCheckpoint(bytes: number, recovered: boolean): void {
    this.stats.localCheckpoints++;
    this.stats.localCheckpointBytes += bytes;
    if (recovered) this.stats.localCheckpointsRecovered++;
  }

  /** What restores read from where since the last call (for the task's restore log line). */
  takeReadStats(): ReadStats {
    const s = this.stats;
    this.stats = newStats();
    return s;
  }

  /** Logs where a restore's files came from (local copies, remote storage, and why not local). */
  logRestore(what: string): void {
    const s = this.takeReadStats();
    const mb = (b: number): string => (b / 1e6).toFixed(1);
    const checkpoints = s.localCheckpoints
      ? `${s.localCheckpoints} local RocksDB checkpoint${s.localCheckpoints > 1 ? 's' : ''} (${mb(s.localCheckpointBytes)} MB) and `
      : '';
    this.log.info(
      { ...s, fallbacks: s.fallbacks.length },
      s.remoteFiles === 0
        ? `${what}: restored from local copies (${checkpoints}${s.localFiles} files, ${mb(s.localBytes)} MB)`
        : `${what}: restored ${checkpoints}${s.localFiles} files (${mb(s.localBytes)} MB) from local copies and ${s.remoteFiles} files (${mb(s.remoteBytes)} MB) from remote storage` +
            (s.fallbacks.length ? ` (${s.fallbacks.length} local copies unusable, see above)` : ''),
    );
  }

  list(relDir: string): Promise<string[]> {
    return this.remote.list(relDir);
  }

  exists(relPath: string): Promise<boolean> {
    return this.remote.exists(relPath);
  }

  async delete(relPath: string): Promise<void> {
    await Promise.all([
      this.remote.delete(relPath),
      rm(this.local(relPath), { force: true }).catch(() => {}),
    ]);
  }

  async deleteDir(relDir: string): Promise<void> {
    await Promise.all([
      this.remote.deleteDir(relDir),
      rm(this.local(relDir), { recursive: true, force: true }).catch(() => {}),
    ]);
  }

  /**
   * Checkpoint `checkpointId` of `jobId` completed: the local copies of older checkpoints'
   * own files (`<job>/chk-<n>` with a smaller n, completed, aborted or subsumed) are dropped.
   */
  async checkpointCompleted(jobId: string, checkpointId: number): Promise<void> {
    const jobDir = this.local(jobId);
    let names: string[];
    try {
      names = await readdir(jobDir);
    } catch {
      return;
    }
    await Promise.all(
      names
        .filter((n) => /^chk-\d+$/.test(n) && Number(n.slice(4)) < checkpointId)
        .map((n) => rm(path.join(jobDir, n), { recursive: true, force: true }).catch(() => {})),
    );
  }
}

interface ReadStats {
  localFiles: number;
  localBytes: number;
  remoteFiles: number;
  remoteBytes: number;
  localCheckpoints: number;
  localCheckpointBytes: number;
  /** of localCheckpoints, those opened in their recovered form (no log replayed) */
  localCheckpointsRecovered: number;
  fallbacks: string[];
}

const newStats = (): ReadStats => ({
  localFiles: 0,
  localBytes: 0,
  remoteFiles: 0,
  remoteBytes: 0,
  localCheckpoints: 0,
  localCheckpointBytes: 0,
  localCheckpointsRecovered: 0,
  fallbacks: [],
});

/** The local recovery directory of this thread's TaskManager, when local recovery is on. */
let localRecovery: { dir: string; log: Logger } | undefined;
const wrapped = new Map<string, LocalRecoveryStorage>();

/** A checkpoint completed: drops the local copies of older ones (no-op when local recovery is off). */
export function localCheckpointCompleted(uri: string, jobId: string, checkpointId: number): void {
  if (!localRecovery) return;
  const s = taskCheckpointStorage(uri);
  if (s instanceof LocalRecoveryStorage) void s.checkpointCompleted(jobId, checkpointId);
}

/**
 * Where a RocksDB backend of a subtask keeps its local checkpoints (copies of its database, see
 * rocksdb/local-checkpoint.ts), when local recovery is on: one directory per job, operator,
 * subtask and layout, so only the same subtask of the same job with the same key groups finds them.
 */
export function localRocksDBCheckpoints(t: {
  jobId: string;
  operatorId: string;
  subtaskIndex: number;
  parallelism: number;
  maxParallelism: number;
}): string | undefined {
  if (!localRecovery) return undefined;
  return path.join(
    localRecovery.dir,
    'rocksdb',
    safeName(t.jobId),
    `${safeName(t.operatorId)}_${t.subtaskIndex}_of_${t.parallelism}_max_${t.maxParallelism}`,
  );
}

const safeName = (s: string): string => s.replace(/[^A-Za-z0-9_.-]/g, '_');

/**
 * Removes the local RocksDB checkpoints of jobs that ended (`keep`: the jobs the cluster runs
 * and those with tasks on this TaskManager), which nothing restores any more; gives their ids.
 */
export async function dropLocalCheckpointsOfEndedJobs(
  localRecoveryDir: string,
  keep: ReadonlySet<string>,
): Promise<string[]> {
  const root = path.join(localRecoveryDir, 'rocksdb');
  let names: string[];
  try {
    names = await readdir(root);
  } catch {
    return [];
  }
  const kept = new Set([...keep].map(safeName));
  const ended = names.filter((n) => !kept.has(n));
  await Promise.all(
    ended.map((n) => rm(path.join(root, n), { recursive: true, force: true }).catch(() => {})),
  );
  return ended;
}

/** A local recovery warning: the local copy could not be kept or used (the checkpoint is fine). */
export function localRecoveryWarning(msg: string): void {
  localRecovery?.log.warn(`local recovery: ${msg}`);
}

/** Turns local recovery on (a directory) or off (undefined) for the checkpoint storage of this thread's tasks. */
export function configureLocalRecovery(dir: string | undefined, log: Logger): void {
  localRecovery = dir ? { dir, log } : undefined;
  wrapped.clear();
}

/**
 * The checkpoint storage tasks write their checkpoints to and restore from: with local
 * recovery on, wrapped so a copy stays on local disk (savepoints are never kept locally).
 */
export function taskCheckpointStorage(location: string | StorageLocation): CheckpointStorage {
  if (!localRecovery) return createCheckpointStorage(location);
  const key = typeof location === 'string' ? location : storageUri(location);
  let s = wrapped.get(key);
  if (!s)
    wrapped.set(
      key,
      (s = new LocalRecoveryStorage(createCheckpointStorage(location), localRecovery.dir, localRecovery.log)),
    );
  return s;
}
