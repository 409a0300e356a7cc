import type { RegisterCommand } from './command.js';
import { registerCancel } from './cancel.js';
import { registerCert } from './cert.js';
import { registerCheckpoints } from './checkpoints.js';
import { registerCluster } from './cluster.js';
import { registerConfig } from './config.js';
import { registerHealth } from './health.js';
import { registerJobManager } from './jobmanager.js';
import { registerList } from './list.js';
import { registerRun } from './run.js';
import { registerSavepoint } from './savepoint.js';
import { registerStatus } from './status.js';
import { registerTaskManager } from './taskmanager.js';

export type { RegisterCommand } from './command.js';

/** Every `weir` command, in the order `weir --help` lists them: processes, cluster, jobs, tools. */
export const COMMANDS: readonly RegisterCommand[] = [
  registerJobManager,
  registerTaskManager,
  registerHealth,
  registerCluster,
  registerRun,
  registerList,
  registerStatus,
  registerCheckpoints,
  registerSavepoint,
  registerCancel,
  registerCert,
  registerConfig,
];
