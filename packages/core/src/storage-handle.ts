import { createHash } from 'node:crypto';

/** Where a written file is, how big it is, and its checksum, so restore can verify it. */
export interface StateHandle {
  path: string;
  size: number;
  sha256: string;
}

/**
 * Checkpoint files behind one interface (file:// and s3://). Paths are
 * relative to the storage root, in the design guide's layout:
 * `<jobId>/chk-<n>/_metadata`, `<jobId>/chk-<n>/<operator>/<subtask>-<uuid>`.
 */
export interface CheckpointStorage {
  readonly root: string;
  write(relPath: string, data: Uint8Array): Promise<StateHandle>;
  read(relPath: string, expectedSha256?: string): Promise<Buffer>;
  list(relDir: string): Promise<string[]>;
  delete(relPath: string): Promise<void>;
  deleteDir(relDir: string): Promise<void>;
}

export function sha256(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}
