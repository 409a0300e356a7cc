import {
  PayloadError,
  StorageError,
  childLocation,
  computeKeyGroupRangeForOperatorIndex,
  createCheckpointStorage,
  describeLocation,
  locationName,
  parentLocation,
  parseStorageLocation,
  keyGroupsOf,
  parseCheckpointMetadata,
  storageFailureReason,
  type CheckpointMetadata,
  type JobGraph,
  type KeyedStateHandle,
  type OperatorLists,
  type OperatorRestoreState,
  type TaskRestoreState,
} from '@weir/core';

/**
 * Reads a savepoint or retained checkpoint and plans how its state is dealt out to the new
 * job: keyed state by key group (any parallelism), source splits as Flink's list state
 * (kept per subtask at equal parallelism, round-robin otherwise). Every error names the file.
 */
export class RestorePlan {
  private constructor(
    readonly metadataFile: string,
    readonly metadata: CheckpointMetadata,
    readonly storageRoot: string,
  ) {}

  static async load(
    restorePath: string,
    graph: JobGraph,
    allowNonRestoredState: boolean,
  ): Promise<RestorePlan> {
    // a checkpoint or savepoint directory, or its _metadata file; a plain path is the JobManager's
    const given = parseStorageLocation(restorePath, { baseDir: process.cwd(), what: 'Restore path' });
    const named = locationName(given) === '_metadata' ? parentLocation(given) : undefined;
    const root = named ?? given;
    const storage = createCheckpointStorage(root);
    const file = describeLocation(childLocation(root, '_metadata'));
    let text: string;
    try {
      text = (await storage.read('_metadata')).toString('utf8');
    } catch (err) {
      if (storageFailureReason(err) !== 'NOT_FOUND') throw err;
      if (!(await storage.exists('')))
        throw new StorageError('NOT_FOUND', `Restore path does not exist: ${describeLocation(given)}`, {
          cause: err,
        });
      throw new StorageError(
        'NOT_FOUND',
        `No _metadata in ${describeLocation(root)}: not a savepoint or completed checkpoint`,
        { cause: err },
      );
    }
    let md: CheckpointMetadata;
    try {
      md = parseCheckpointMetadata(text, `Corrupt checkpoint metadata ${file}`);
    } catch (e) {
      if (e instanceof PayloadError) throw new StorageError('CORRUPT', e.message);
      throw e;
    }
    if (md.maxParallelism !== graph.maxParallelism) {
      throw new Error(
        `The checkpoint in ${file} has max parallelism ${md.maxParallelism} but the job has ${graph.maxParallelism}; the number of key groups cannot change`,
      );
    }
    const known = new Set(graph.vertices.flatMap((v) => v.operators.map((o) => o.id)));
    const orphans = Object.entries(md.operators)
      .filter(([id, op]) => !known.has(id) && Object.keys(op.subtasks).length > 0)
      .map(([id]) => id);
    if (orphans.length > 0 && !allowNonRestoredState) {
      throw new Error(
        `The checkpoint in ${file} has state for operators the job does not have: ${orphans.join(', ')}. Set uid() on operators, or pass --allow-non-restored-state to drop that state`,
      );
    }
    // handle paths are relative to the directory of _metadata
    return new RestorePlan(file, md, storage.root);
  }

  /**
   * List state: kept per subtask at equal parallelism, else all items dealt round-robin;
   * union list state: every subtask gets the items of all old subtasks.
   */
  private redistributeLists(
    all: Array<OperatorLists | undefined>,
    own: OperatorLists | undefined,
    subtask: number,
    parallelism: number,
    same: boolean,
  ): OperatorLists | undefined {
    const names = new Map<string, 'split' | 'union'>();
    for (const l of all) for (const [name, v] of Object.entries(l ?? {})) names.set(name, v.mode);
    if (names.size === 0) return undefined;
    const out: OperatorLists = {};
    for (const [name, mode] of names) {
      const everything = all.flatMap((l) => l?.[name]?.items ?? []);
      if (mode === 'union') out[name] = { mode, items: everything };
      else
        out[name] = {
          mode,
          items: same ? (own?.[name]?.items ?? []) : everything.filter((_, k) => k % parallelism === subtask),
        };
    }
    return out;
  }

  /** what the source coordinator of `operatorId` kept in the checkpoint, if anything */
  coordinatorState(operatorId: string): unknown {
    return this.metadata.operators[operatorId]?.coordinatorState;
  }

  /** the ids of the splits the readers of source `operatorId` kept in the checkpoint */
  splitIds(operatorId: string): Set<string> {
    const ids = new Set<string>();
    for (const s of Object.values(this.metadata.operators[operatorId]?.subtasks ?? {}))
      for (const split of s.operatorState ?? []) {
        const id = (split as { splitId?: unknown } | null)?.splitId;
        if (typeof id === 'string') ids.add(id);
      }
    return ids;
  }

  forSubtask(operatorIds: string[], subtask: number, parallelism: number): TaskRestoreState | undefined {
    const out: TaskRestoreState = {
      storage: this.storageRoot,
      checkpointId: this.metadata.checkpointId,
      operators: {},
    };
    const range = computeKeyGroupRangeForOperatorIndex(this.metadata.maxParallelism, parallelism, subtask);
    for (const id of operatorIds) {
      const op = this.metadata.operators[id];
      if (!op) continue;
      const entries = Object.entries(op.subtasks).sort(([a], [b]) => Number(a) - Number(b));
      const restored: OperatorRestoreState = {};
      const lists = this.redistributeLists(
        entries.map(([, s]) => s.lists),
        op.parallelism === parallelism ? op.subtasks[subtask]?.lists : undefined,
        subtask,
        parallelism,
        op.parallelism === parallelism,
      );
      if (lists) restored.lists = lists;
      const withSplits = entries.filter(([, s]) => Array.isArray(s.operatorState));
      if (withSplits.length > 0) {
        restored.splits =
          op.parallelism === parallelism
            ? (op.subtasks[subtask]?.operatorState ?? [])
            : withSplits.flatMap(([, s]) => s.operatorState!).filter((_, k) => k % parallelism === subtask);
      }
      const keyed = entries
        .map(([, s]) => s.keyed)
        .filter((k): k is KeyedStateHandle => !!k && keyGroupsOf(k).some((kg) => range.contains(kg)));
      if (keyed.length > 0) restored.keyed = keyed;
      out.operators[id] = restored;
    }
    return out;
  }
}
