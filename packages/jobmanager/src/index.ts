export { JobManager, type JobManagerOptions } from './job-manager.js';
export { StoragePathPolicy } from './storage-paths.js';
