export { JobManager, type JobManagerOptions } from './job-manager.js';
