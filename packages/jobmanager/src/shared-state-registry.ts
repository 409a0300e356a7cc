import path from 'node:path';
import { sharedFilesOfHandle, type CheckpointStorage, type Logger, type OperatorState } from '@weir/core';

/** A shared file a checkpoint's metadata references: its path under the storage root and the checkpoint that wrote it. */
export interface SharedFileRef {
  path: string;
  checkpointId: number;
}

/**
 * The shared files (`<job>/shared/...`) a checkpoint's metadata references (incremental and
 * native RocksDB keyed state), with their paths made relative to the storage root. `directory`
 * is the checkpoint's directory under the root (handle paths are relative to it).
 */
export function sharedFilesOf(
  operators: Record<string, Pick<OperatorState, 'subtasks'>>,
  directory: string,
): SharedFileRef[] {
  const out = new Map<string, SharedFileRef>();
  for (const op of Object.values(operators)) {
    for (const st of Object.values(op.subtasks)) {
      if (!st.keyed) continue;
      for (const f of sharedFilesOfHandle(st.keyed)) {
        const p = path.posix.normalize(`${directory}/${f.path}`);
        out.set(p, { path: p, checkpointId: f.checkpointId });
      }
    }
  }
  return [...out.values()];
}

/**
 * Reference counting of the shared files of incremental checkpoints, after Flink's
 * SharedStateRegistry: each file knows the retained checkpoints that use it, and is deleted when
 * the last of them is discarded. The CheckpointCoordinator registers a checkpoint when it
 * completes and unregisters it when it is subsumed (or the job ends without keeping it); files
 * of an aborted checkpoint that no completed one took over are deleted at once.
 */
export class SharedStateRegistry {
  /** file (relative to the storage root) -> the retained checkpoints referencing it */
  private readonly users = new Map<string, Set<number>>();
  private readonly filesOf = new Map<number, string[]>();

  constructor(
    private readonly storage: CheckpointStorage,
    private readonly log: Logger,
  ) {}

  /** A file that an earlier checkpoint wrote but no retained checkpoint holds any more: taking it over would point at a deleted file. */
  missing(checkpointId: number, files: SharedFileRef[]): SharedFileRef | undefined {
    return files.find((f) => f.checkpointId !== checkpointId && !this.users.has(f.path));
  }

  register(checkpointId: number, files: SharedFileRef[]): void {
    const paths = files.map((f) => f.path);
    this.filesOf.set(checkpointId, paths);
    for (const p of paths) {
      let u = this.users.get(p);
      if (!u) this.users.set(p, (u = new Set()));
      u.add(checkpointId);
    }
  }

  /** The checkpoint is no longer retained: files no other retained checkpoint uses are deleted. */
  async unregister(checkpointId: number): Promise<string[]> {
    const paths = this.filesOf.get(checkpointId) ?? [];
    this.filesOf.delete(checkpointId);
    const unused: string[] = [];
    for (const p of paths) {
      const u = this.users.get(p);
      u?.delete(checkpointId);
      if (!u || u.size === 0) {
        this.users.delete(p);
        unused.push(p);
      }
    }
    await this.deleteFiles(unused);
    return unused;
  }

  /** Files of a checkpoint that did not complete: those no retained checkpoint references are deleted. */
  async discardUnreferenced(files: SharedFileRef[]): Promise<void> {
    await this.deleteFiles(files.map((f) => f.path).filter((p) => !this.users.has(p)));
  }

  isReferenced(file: string): boolean {
    return this.users.has(file);
  }

  /** Every referenced file, for tests and the recovery sweep. */
  referenced(): Set<string> {
    return new Set(this.users.keys());
  }

  private async deleteFiles(paths: string[]): Promise<void> {
    await Promise.all(
      paths.map((p) =>
        this.storage
          .delete(p)
          .catch((err: Error) =>
            this.log.warn({ file: p, err: err.message }, 'could not delete a shared state file'),
          ),
      ),
    );
  }
}
