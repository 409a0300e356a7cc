export { bundleJob, JobFileError } from './bundler.js';
export { ClusterClient } from './cluster-client.js';
export { LocalCluster, WEIR_BIN } from './local-cluster.js';
export { runJob, type RunOptions } from './commands/run.js';
