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
    RestorePlan.checkChannelState(md, graph, file);
    // handle paths are relative to the directory of _metadata
    return new RestorePlan(file, md, storage.root);
  }

  /**
   * In-flight data of an unaligned checkpoint belongs to channels between particular subtasks,
   * so it is restored only where every vertex keeps its parallelism and its chain head;
   * otherwise the restore is refused, naming the way out (a savepoint is always aligned).
   */
  private static checkChannelState(md: CheckpointMetadata, graph: JobGraph, file: string): void {
    const withChannelState = Object.values(md.operators).some((op) =>
      Object.values(op.subtasks).some((s) => s.channelState),
    );
    if (!withChannelState) return;
    const changed: string[] = [];
    for (const v of graph.vertices)
      for (const o of v.operators) {
        const op = md.operators[o.id];
        if (op && op.parallelism !== v.parallelism)
          changed.push(`'${o.name}' ${op.parallelism} -> ${v.parallelism}`);
      }
    const heads = new Set(graph.vertices.map((v) => v.operators[0]!.id));
    const moved = Object.entries(md.operators)
      .filter(([id, op]) => !heads.has(id) && Object.values(op.subtasks).some((s) => s.channelState))
      .map(([id]) => id);
    if (changed.length === 0 && moved.length === 0) return;
    throw new Error(
      `The checkpoint in ${file} is an unaligned checkpoint: it holds in-flight records of the ` +
        `network channels between subtasks, which weir restores only at the parallelism and ` +
        `operator chaining it was taken with (` +
        (changed.length > 0
          ? `parallelism changed: ${changed.join(', ')}`
          : `chaining changed: ${moved.join(', ')} no longer heads a task`) +
        `). To rescale, take a savepoint of the running job (savepoints are always aligned, ` +
        `without in-flight data) and submit the new job with --from-savepoint <that savepoint>.`,
    );
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

  /** every split the readers of source `operatorId` kept; undefined when the checkpoint lacks the operator */
  readerSplits(operatorId: string): unknown[] | undefined {
    const op = this.metadata.operators[operatorId];
    if (!op) return undefined;
    return Object.values(op.subtasks).flatMap((s) => s.operatorState ?? []);
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
      const channelState = op.parallelism === parallelism ? op.subtasks[subtask]?.channelState : undefined;
      if (channelState) restored.channelState = channelState;
      out.operators[id] = restored;
    }
    return out;
  }
}
