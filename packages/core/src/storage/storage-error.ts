/**
 * Why a storage operation failed, as a code callers branch on (the message is for people):
 *
 * - `NOT_FOUND`: the file, object, directory or bucket does not exist;
 * - `CORRUPT`: it exists but fails its checksum, is truncated or cannot be parsed;
 * - `UNAVAILABLE`: the storage cannot be reached or refused the operation (network, S3 down,
 *   permissions, a full disk): it may work again later;
 * - `INVALID_LOCATION`: the URI or path cannot name storage at all.
 */
export type StorageFailureReason = 'NOT_FOUND' | 'CORRUPT' | 'UNAVAILABLE' | 'INVALID_LOCATION';

export class StorageError extends Error {
  override readonly name = 'StorageError';

  constructor(
    readonly reason: StorageFailureReason,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

const REASONS: ReadonlySet<string> = new Set<StorageFailureReason>([
  'NOT_FOUND',
  'CORRUPT',
  'UNAVAILABLE',
  'INVALID_LOCATION',
]);

/**
 * The reason of a storage error, or undefined for any other error. Checked by shape rather than
 * `instanceof`, so an error from another copy of this module (a bundle, a test importing
 * sources next to built packages) is still recognised.
 */
export function storageFailureReason(err: unknown): StorageFailureReason | undefined {
  if (!(err instanceof Error) || err.name !== 'StorageError') return undefined;
  const reason = (err as { reason?: unknown }).reason;
  return typeof reason === 'string' && REASONS.has(reason) ? (reason as StorageFailureReason) : undefined;
}

/**
 * Damage to a checkpoint (a file missing, truncated or failing its checksum, unreadable
 * metadata), as opposed to storage that is unreachable for a while: only damage makes failover
 * give up on a checkpoint and fall back to an older one. Takes an error, or the reason code a
 * task failure carries across processes (TaskFailure.reason).
 */
export function isCheckpointDamaged(errOrReason: unknown): boolean {
  const reason = typeof errOrReason === 'string' ? errOrReason : storageFailureReason(errOrReason);
  return reason === 'NOT_FOUND' || reason === 'CORRUPT';
}
