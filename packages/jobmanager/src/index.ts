export { JobManager, toStorageUri, type JobManagerOptions } from './job-manager.js';
export { StoragePathPolicy } from './storage-paths.js';
