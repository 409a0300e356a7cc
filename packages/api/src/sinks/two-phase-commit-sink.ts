import { randomUUID } from 'node:crypto';
import type { Sink, SinkWriter } from '../sink.js';
import type { TaskInfo } from '../runtime-context.js';

/** A subtask's facts plus an id unique to this writer, so leftovers of earlier attempts can be told apart. */
export interface TransactionContext extends TaskInfo {
  /** 32 lowercase hex digits, random for every writer (task attempt): unique across jobs and restores */
  writerId: string;
}

/** What a two-phase-commit sink keeps in checkpoints, per subtask. */
interface TransactionStateItem<TXN> {
  /** the subtask that opened the transaction; after rescaling, subtask (owner % parallelism) recovers it */
  owner: number;
  /** pre-committed at this checkpoint (the open transaction is never kept: the barrier pre-commits it) */
  checkpointId: number;
  txn: TXN;
}

/**
 * Exactly-once output after Flink's TwoPhaseCommitSinkFunction. Records go into the open
 * transaction; at a checkpoint barrier it is pre-committed and a new one begins; when the
 * checkpoint completes everywhere, every transaction pre-committed up to it is committed. On
 * restore, the transactions the restored checkpoint pre-committed are committed (so `commit`
 * must be idempotent) and the one that was open is aborted.
 *
 * Without periodic checkpoints there is no second phase to wait for: the transaction is
 * committed when the input ends and when the task closes.
 */
export abstract class TwoPhaseCommitSink<T, TXN> implements Sink<T> {
  /** Opens a transaction; `ctx` says which subtask (and writer) writes it. */
  protected abstract beginTransaction(ctx: TransactionContext): TXN;
  protected abstract invoke(txn: TXN, value: T): void;
  /** Synchronous, at the barrier: flush everything so the transaction can be committed later. */
  protected abstract preCommit(txn: TXN, checkpointId: number): void;
  /** Makes the transaction visible; must be idempotent (it may run again after a restore). */
  protected abstract commit(txn: TXN): void | Promise<void>;
  protected abstract abort(txn: TXN): void;
  /**
   * Called once per restored subtask after its recovered transactions were handled, e.g. to
   * remove what earlier attempts of the subtasks in `ownedSubtasks` left behind (anything not
   * written by `ctx.writerId`).
   */
  protected recoveryFinished(_ctx: TransactionContext, _ownedSubtasks: number[]): void {}

  createWriter(info: TaskInfo, restoredState?: unknown[]): SinkWriter<T> {
    const ctx: TransactionContext = { ...info, writerId: randomUUID().replace(/-/g, '') };
    const pending: Array<{ checkpointId: number; txn: TXN }> = [];
    let current: TXN | undefined;
    let recovering: Promise<void> | undefined;
    // restored, or restarted without a checkpoint: earlier attempts may have left transactions behind
    if (restoredState !== undefined || ctx.attemptNumber > 0) {
      const mine = ((restoredState ?? []) as Array<TransactionStateItem<TXN>>).filter(
        (i) => i.owner % ctx.parallelism === ctx.subtaskIndex,
      );
      // the subtasks this one stands in for after a rescale, its own index included
      const owned = [...new Set([ctx.subtaskIndex, ...mine.map((i) => i.owner)])];
      recovering = (async () => {
        // everything a restored checkpoint kept was pre-committed there, and that checkpoint completed
        for (const item of mine) await this.commit(item.txn);
        this.recoveryFinished(ctx, owned);
      })();
    }
    const txn = (): TXN => (current ??= this.beginTransaction(ctx));
    // synchronous when nothing is being recovered, so errors surface where they happen
    const commitCurrent = (): void | Promise<void> => {
      if (current === undefined) return;
      const t = current;
      current = undefined;
      this.preCommit(t, 0);
      return this.commit(t);
    };
    const commitNow = (): void | Promise<void> =>
      recovering ? recovering.then(commitCurrent) : commitCurrent();
    if (!ctx.checkpointingEnabled) {
      return {
        write: (r) => this.invoke(txn(), r),
        flush: commitNow,
        close: commitNow,
      };
    }
    return {
      write: (r) => this.invoke(txn(), r),
      snapshotState: (checkpointId) => {
        if (current !== undefined) {
          this.preCommit(current, checkpointId);
          pending.push({ checkpointId, txn: current });
          current = undefined;
        }
        return pending.map((p): TransactionStateItem<TXN> => ({ owner: ctx.subtaskIndex, ...p }));
      },
      notifyCheckpointComplete: async (checkpointId) => {
        await recovering;
        while (pending.length > 0 && pending[0]!.checkpointId <= checkpointId) {
          await this.commit(pending[0]!.txn);
          pending.shift();
        }
      },
      close: async () => {
        await recovering;
        // pre-committed transactions stay for the restore to commit; only the open one goes
        if (current !== undefined) this.abort(current);
        current = undefined;
      },
    };
  }
}
