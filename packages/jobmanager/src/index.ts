export { JobManager, toStorageUri, type JobManagerOptions } from './job-manager.js';
