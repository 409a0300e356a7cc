import type { CheckpointStorage } from './checkpoint-storage.js';
import { FileCheckpointStorage } from './file-checkpoint-storage.js';
import { parseStorageLocation, type StorageLocation } from './location.js';
import { S3CheckpointStorage } from './s3-checkpoint-storage.js';

export * from './background-sha256.js';
export * from './checkpoint-storage.js';
export * from './file-checkpoint-storage.js';
export * from './file-chunks.js';
export * from './location.js';
export * from './s3-checkpoint-storage.js';
export * from './s3-settings.js';
export * from './storage-error.js';

/**
 * The storage at a location: a file:// URI or path location opens the directory, s3:// the
 * bucket prefix (the AWS SDK is loaded only then, on first use). A string is parsed as a URI;
 * an invalid one throws StorageError INVALID_LOCATION naming it.
 */
export function createCheckpointStorage(location: string | StorageLocation): CheckpointStorage {
  const loc =
    typeof location === 'string' ? parseStorageLocation(location, { what: 'Checkpoint storage' }) : location;
  return loc.scheme === 's3' ? new S3CheckpointStorage(loc) : new FileCheckpointStorage(loc);
}
