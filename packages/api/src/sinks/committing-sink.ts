import { randomUUID } from 'node:crypto';
import type { Sink, SinkWriter } from '../sink.js';
import type { TaskInfo } from '../runtime-context.js';

/** A subtask's facts plus an id unique to this writer, so leftovers of earlier attempts can be told apart. */
export interface TransactionContext extends TaskInfo {
  /** 32 lowercase hex digits, random for every writer (task attempt): unique across jobs and restores */
  writerId: string;
}

/**
 * Writes one subtask's records into an open transaction, after Flink's
 * TwoPhaseCommittingSink.PrecommittingSinkWriter.
 */
export interface PrecommittingWriter<T, C> {
  /** connects and checks the destination before the task runs; a rejection fails the task */
  open?(): Promise<void>;
  write(record: T): void;
  /** as SinkWriter.isAvailable: undefined while it takes records */
  isAvailable?(): Promise<void> | undefined;
  /**
   * At the barrier, synchronously: seal what was written since the last barrier and return
   * its committable (JSON, e.g. a prepared transaction's id), or undefined when nothing was
   * written. I/O that makes it durable continues in the background; `preCommitted` waits for it.
   */
  prepareCommit(checkpointId: number): C | undefined;
  /** resolves once every committable returned so far is durable; rejects if one cannot be */
  preCommitted(): Promise<void>;
  /** discards what was written since the last barrier (kept committables stay for a restore) */
  close(): Promise<void>;
}

/** Makes committables visible once their checkpoint completed; the second phase. */
export interface Committer<C> {
  /** must be idempotent: after a restore it may see a committable that was already committed */
  commit(committables: C[]): Promise<void>;
  close?(): Promise<void>;
}

/** What the sink keeps in checkpoints, per subtask: the committables not yet committed. */
interface CommittableItem<C> {
  /** the subtask that wrote it; after rescaling, subtask (owner % parallelism) commits it */
  owner: number;
  checkpointId: number;
  committable: C;
}

/**
 * Exactly-once output in the shape of Flink's two-phase-commit sink: a writer per subtask
 * that pre-commits at each barrier, a committer that commits when the checkpoint completes,
 * and the committables in checkpoints (union list state, so after a rescale every one is
 * taken by exactly one subtask). The checkpoint is acknowledged only after the pre-commit is
 * durable, so a completed checkpoint always names committables that can be committed.
 *
 * Needs periodic checkpoints: without them the writer's committable is committed at the end
 * of input.
 */
export abstract class TwoPhaseCommittingSink<T, C> implements Sink<T> {
  abstract createPrecommittingWriter(ctx: TransactionContext): PrecommittingWriter<T, C>;
  abstract createCommitter(ctx: TransactionContext): Committer<C>;
  /**
   * Runs before the subtask's first pre-commit, on every start: commit `committables` (what the
   * restored checkpoint recorded for the subtasks this one stands in for) and roll back what
   * earlier attempts left behind that no completed checkpoint names, e.g. transactions
   * prepared for a checkpoint that never completed. On a fresh start `committables` is empty.
   */
  protected abstract recover(
    ctx: TransactionContext,
    committables: C[],
    committer: Committer<C>,
  ): Promise<void>;

  createWriter(info: TaskInfo, restoredState?: unknown[]): SinkWriter<T> {
    const ctx: TransactionContext = { ...info, writerId: randomUUID().replace(/-/g, '') };
    const mine = ((restoredState ?? []) as Array<CommittableItem<C>>).filter(
      (i) => i.owner % ctx.parallelism === ctx.subtaskIndex,
    );
    const writer = this.createPrecommittingWriter(ctx);
    const committer = this.createCommitter(ctx);
    const recovering = this.recover(
      ctx,
      mine.map((i) => i.committable),
      committer,
    );
    // a failed recovery fails the task at its next checkpoint or commit, whichever comes first
    recovering.catch(() => {});
    const pending: Array<{ checkpointId: number; committable: C }> = [];
    const commitUpTo = async (checkpointId: number): Promise<void> => {
      await recovering;
      let n = 0;
      while (n < pending.length && pending[n]!.checkpointId <= checkpointId) n++;
      if (n === 0) return;
      await committer.commit(pending.slice(0, n).map((p) => p.committable));
      pending.splice(0, n);
    };
    const open = async (): Promise<void> => {
      await writer.open?.();
      await recovering;
    };
    const close = async (): Promise<void> => {
      await writer.close();
      await committer.close?.();
    };
    if (!ctx.checkpointingEnabled) {
      const finish = async (): Promise<void> => {
        const c = writer.prepareCommit(0);
        if (c !== undefined) pending.push({ checkpointId: 0, committable: c });
        await recovering;
        await writer.preCommitted();
        await commitUpTo(0);
      };
      return {
        open: () => open(),
        write: (r) => writer.write(r),
        isAvailable: () => writer.isAvailable?.(),
        flush: finish,
        close,
      };
    }
    return {
      open,
      write: (r) => writer.write(r),
      isAvailable: () => writer.isAvailable?.(),
      snapshotState: (checkpointId) => {
        const c = writer.prepareCommit(checkpointId);
        if (c !== undefined) pending.push({ checkpointId, committable: c });
        return pending.map((p): CommittableItem<C> => ({ owner: ctx.subtaskIndex, ...p }));
      },
      preCommitted: async () => {
        await recovering;
        await writer.preCommitted();
      },
      notifyCheckpointComplete: commitUpTo,
      close,
    };
  }
}
