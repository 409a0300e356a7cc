export type CheckpointingMode = 'EXACTLY_ONCE' | 'AT_LEAST_ONCE';
export type ExternalizedCheckpointRetention = 'DELETE_ON_CANCELLATION' | 'RETAIN_ON_CANCELLATION';

/** Serializable checkpoint settings, with Flink's meanings and defaults. */
export interface CheckpointSettings {
  /** 0: checkpointing off */
  intervalMs: number;
  mode: CheckpointingMode;
  timeoutMs: number;
  minPauseBetweenCheckpointsMs: number;
  maxConcurrentCheckpoints: number;
  tolerableFailedCheckpoints: number;
  retainedCheckpoints: number;
  externalizedRetention: ExternalizedCheckpointRetention;
  /** file:///path or s3://bucket/prefix; empty: the cluster's default */
  storage: string;
  /**
   * Unaligned checkpoints (FLIP-76): barriers overtake the records queued in network buffers,
   * which are stored with the checkpoint as channel state. EXACTLY_ONCE only; savepoints stay aligned.
   */
  unaligned: boolean;
  /**
   * With unaligned checkpoints: a checkpoint starts aligned and switches to unaligned once a
   * task has aligned it this long (0: unaligned from the start).
   */
  alignedCheckpointTimeoutMs: number;
}

export const DEFAULT_CHECKPOINT_SETTINGS: CheckpointSettings = {
  intervalMs: 0,
  mode: 'EXACTLY_ONCE',
  timeoutMs: 10 * 60_000,
  minPauseBetweenCheckpointsMs: 0,
  maxConcurrentCheckpoints: 1,
  tolerableFailedCheckpoints: 0,
  retainedCheckpoints: 1,
  externalizedRetention: 'DELETE_ON_CANCELLATION',
  storage: '',
  unaligned: false,
  alignedCheckpointTimeoutMs: 0,
};

/** Unaligned checkpoints apply: asked for, and the mode aligns barriers (EXACTLY_ONCE). */
export function unalignedCheckpointsApply(s: CheckpointSettings): boolean {
  return !!s.unaligned && s.mode !== 'AT_LEAST_ONCE';
}

/**
 * Why unaligned checkpoints were asked for but do not apply, saying what is used instead, or
 * undefined (as Flink does, the setting is then ignored rather than refused).
 */
export function unalignedCheckpointsIgnored(s: CheckpointSettings): string | undefined {
  if (!s.unaligned || s.mode !== 'AT_LEAST_ONCE') return undefined;
  return (
    'Unaligned checkpoints are enabled but the checkpointing mode is AT_LEAST_ONCE, which never ' +
    'aligns barriers (nothing waits, so nothing overtakes): checkpoints are taken at-least-once ' +
    'without channel state. Set the mode to EXACTLY_ONCE for unaligned checkpoints.'
  );
}

function nonNegative(v: number, what: string): number {
  if (!Number.isFinite(v) || v < 0) throw new Error(`${what} must be a non-negative number, got ${v}`);
  return v;
}

function positiveInt(v: number, what: string): number {
  if (!Number.isInteger(v) || v < 1) throw new Error(`${what} must be a positive integer, got ${v}`);
  return v;
}

export class CheckpointConfig {
  readonly settings: CheckpointSettings = { ...DEFAULT_CHECKPOINT_SETTINGS };
  /** what the job set itself: it wins over the cluster's configuration file */
  private readonly explicit = new Set<keyof CheckpointSettings>();

  private set<K extends keyof CheckpointSettings>(key: K, value: CheckpointSettings[K]): this {
    this.settings[key] = value;
    this.explicit.add(key);
    return this;
  }

  /** Only the settings the job made, for merging over the cluster's defaults. */
  explicitSettings(): Partial<CheckpointSettings> {
    return Object.fromEntries(
      [...this.explicit].map((k) => [k, this.settings[k]]),
    ) as Partial<CheckpointSettings>;
  }

  isCheckpointingEnabled(): boolean {
    return this.settings.intervalMs > 0;
  }
  setCheckpointInterval(ms: number): this {
    return this.set('intervalMs', positiveInt(ms, 'Checkpoint interval'));
  }
  setCheckpointingMode(mode: CheckpointingMode): this {
    if (mode !== 'EXACTLY_ONCE' && mode !== 'AT_LEAST_ONCE')
      throw new Error(`Checkpointing mode must be EXACTLY_ONCE or AT_LEAST_ONCE, got ${mode}`);
    return this.set('mode', mode);
  }
  setCheckpointTimeout(ms: number): this {
    return this.set('timeoutMs', positiveInt(ms, 'Checkpoint timeout'));
  }
  setMinPauseBetweenCheckpoints(ms: number): this {
    return this.set('minPauseBetweenCheckpointsMs', nonNegative(ms, 'Min pause between checkpoints'));
  }
  setMaxConcurrentCheckpoints(n: number): this {
    return this.set('maxConcurrentCheckpoints', positiveInt(n, 'Max concurrent checkpoints'));
  }
  setTolerableCheckpointFailureNumber(n: number): this {
    if (!Number.isInteger(n) || n < 0)
      throw new Error(`Tolerable checkpoint failures must be an integer >= 0, got ${n}`);
    return this.set('tolerableFailedCheckpoints', n);
  }
  setNumRetainedCheckpoints(n: number): this {
    return this.set('retainedCheckpoints', positiveInt(n, 'Retained checkpoints'));
  }
  setExternalizedCheckpointRetention(r: ExternalizedCheckpointRetention): this {
    return this.set('externalizedRetention', r);
  }
  /**
   * Flink's enableUnalignedCheckpoints: under backpressure a checkpoint takes about as long as
   * its state takes to write, not as long as the queued records take to drain. Those records
   * are written with the checkpoint. Needs EXACTLY_ONCE; savepoints are always aligned.
   */
  enableUnalignedCheckpoints(enabled = true): this {
    return this.set('unaligned', enabled);
  }
  isUnalignedCheckpointsEnabled(): boolean {
    return this.settings.unaligned;
  }
  /**
   * Flink's setAlignedCheckpointTimeout: checkpoints start aligned and switch to unaligned when
   * a task's alignment takes longer than `ms` (0: unaligned from the start). Applies with
   * unaligned checkpoints enabled.
   */
  setAlignedCheckpointTimeout(ms: number): this {
    return this.set('alignedCheckpointTimeoutMs', nonNegative(ms, 'Aligned checkpoint timeout'));
  }
  /** `file:///absolute/dir` or `s3://bucket/prefix` */
  setCheckpointStorage(uri: string): this {
    if (!/^(file:\/\/\/|s3:\/\/)/.test(uri))
      throw new Error(`Checkpoint storage must be file:///path or s3://bucket/prefix, got '${uri}'`);
    return this.set('storage', uri);
  }
}
