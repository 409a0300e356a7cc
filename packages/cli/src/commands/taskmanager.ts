import type { Command } from 'commander';
import path from 'node:path';
import {
  checkExposure,
  openInternalServicesWarning,
  configureS3Storage,
  defaultAdvertisedHost,
  parseAddress,
  parsePort,
  parsePositiveInt,
} from '@weir/core';
import type { Worker } from 'node:worker_threads';
import { TaskExecutor, startSpareSlotWorkers } from '@weir/taskmanager';
import { arg } from '../cli-args.js';
import {
  addDefineOption,
  addLogLevelOption,
  resolveCommandConfig,
  type ConfigCliOptions,
} from '../config-options.js';
import type { AdoptMessage } from '../local-cluster.js';
import { onShutdown, readyToParent } from '../process-lifecycle.js';
import { addSecurityOptions, applySecurity } from '../security-options.js';

interface TaskManagerCliOptions extends ConfigCliOptions {
  jobmanager?: { host: string; port: number };
  slots?: number;
  host?: string;
  advertisedHost?: string;
  port?: number;
  metricsPort?: number;
  id?: string;
  workDir?: string;
  stateDir?: string;
  standby?: boolean;
}

/** `weir taskmanager`: the TaskManager process entry point. */
export function registerTaskManager(program: Command): void {
  addSecurityOptions(
    addLogLevelOption(
      addDefineOption(
        program
          .command('taskmanager')
          .description(
            'run a TaskManager in this process (settings: flags > WEIR_* environment > --config file > defaults; see `weir config`)',
          )
          .option(
            '--jobmanager <host:port>',
            'JobManager to register with (jobmanager.rpc.address and jobmanager.rpc.port; default 127.0.0.1:6123)',
            arg(parseAddress, '--jobmanager'),
          )
          .option(
            '--slots <n>',
            'number of task slots, one worker thread each (taskmanager.numberOfTaskSlots; default 1)',
            arg(parsePositiveInt, '--slots'),
          )
          .option('--host <host>', 'interface to listen on (taskmanager.bind-host; default 127.0.0.1)')
          .option(
            '--advertised-host <host>',
            "host other processes use to reach this TaskManager (taskmanager.host; default: --host, or this machine's first non-loopback IPv4 address when --host is 0.0.0.0)",
          )
          .option(
            '--port <port>',
            'port for tasks and data exchange (taskmanager.rpc.port; default 0: any free port)',
            arg(parsePort, '--port'),
          )
          .option(
            '--metrics-port <port>',
            'serve Prometheus metrics at GET /metrics on this port (metrics.reporter.prometheus.port; 0: any free port; default: none)',
            arg(parsePort, '--metrics-port'),
          )
          .option('--id <id>', 'TaskManager id (taskmanager.resource-id; default: random)')
          .option(
            '--work-dir <dir>',
            'local working directory (process.taskmanager.working-dir; default .weir/work)',
          )
          .option(
            '--standby',
            'start, then wait for the local cluster that forked this process to give it the id and working directory of a TaskManager that died (its local state with them)',
          )
          .option(
            '--state-dir <dir>',
            'local state directory root for RocksDB state; this TaskManager uses <dir>/<id> (state.backend.rocksdb.localdir; default .weir/tm-state)',
          ),
      ),
    ),
    'server',
  ).action(runTaskManager);
}

/**
 * A standby has loaded its code and waits for the identity of a TaskManager that died; it has
 * no state of its own, so a parent that goes away just ends it.
 */
function adoptedIdentity(): Promise<AdoptMessage> {
  if (!process.send)
    throw new Error('--standby needs a local cluster that forked this process to give it an identity');
  const orphaned = (): never => process.exit(0);
  process.once('disconnect', orphaned);
  process.send({ type: 'standby' });
  return new Promise((resolve) => {
    const onMessage = (m: Partial<AdoptMessage>): void => {
      if (m?.type !== 'adopt' || !m.id || !m.workDir) return;
      process.off('message', onMessage);
      process.off('disconnect', orphaned);
      resolve(m as AdoptMessage);
    };
    process.on('message', onMessage);
  });
}

async function runTaskManager(given: TaskManagerCliOptions): Promise<void> {
  let o = given;
  let spareWorkers: Worker[] | undefined;
  if (o.standby) {
    // the slots' worker threads load the task code while the standby waits
    const early = taskManagerConfig(o);
    spareWorkers = startSpareSlotWorkers(early.settings, early.get('taskmanager.numberOfTaskSlots'));
    const adopt = await adoptedIdentity();
    o = { ...o, id: adopt.id, workDir: adopt.workDir };
  }
  const cfg = taskManagerConfig(o);
  const config = cfg.toClusterConfig();
  const sec = applySecurity(o, 'server', config);
  const warning = openInternalServicesWarning(sec);
  if (warning) console.warn(warning);
  configureS3Storage(cfg.settings);
  const host = cfg.get('taskmanager.bind-host');
  const refusal = checkExposure(host, sec, 'TaskManager', config.security.insecure ?? false);
  if (refusal) throw new Error(refusal);
  const id = cfg.get('taskmanager.resource-id');
  const tm = new TaskExecutor({
    jobManagerAddress: `${cfg.get('jobmanager.rpc.address')}:${cfg.get('jobmanager.rpc.port')}`,
    slots: cfg.get('taskmanager.numberOfTaskSlots'),
    host,
    port: cfg.get('taskmanager.rpc.port'),
    workDir: path.resolve(cfg.get('process.taskmanager.working-dir')),
    stateDir: path.resolve(cfg.get('state.backend.rocksdb.localdir') ?? path.join('.weir', 'tm-state')),
    advertisedHost: cfg.get('taskmanager.host') ?? defaultAdvertisedHost(host),
    settings: cfg.settings,
    ...(id ? { taskManagerId: id } : {}),
    ...(spareWorkers ? { spareWorkers } : {}),
    ...(cfg.get('metrics.reporter.prometheus.port') !== undefined
      ? { prometheusPort: cfg.get('metrics.reporter.prometheus.port') }
      : {}),
  });
  onShutdown(() => tm.stop());
  await tm.start();
  readyToParent(tm.boundAddress, tm.metrics.address ? { metrics: tm.metrics.address } : {});
}

function taskManagerConfig(o: TaskManagerCliOptions): ReturnType<typeof resolveCommandConfig> {
  return resolveCommandConfig({ ...o, jmHost: o.jobmanager?.host, jmPort: o.jobmanager?.port }, [
    ['jmHost', '--jobmanager', 'jobmanager.rpc.address'],
    ['jmPort', '--jobmanager', 'jobmanager.rpc.port'],
    ['slots', '--slots', 'taskmanager.numberOfTaskSlots'],
    ['host', '--host', 'taskmanager.bind-host'],
    ['advertisedHost', '--advertised-host', 'taskmanager.host'],
    ['port', '--port', 'taskmanager.rpc.port'],
    ['id', '--id', 'taskmanager.resource-id'],
    ['metricsPort', '--metrics-port', 'metrics.reporter.prometheus.port'],
    ['workDir', '--work-dir', 'process.taskmanager.working-dir'],
    ['stateDir', '--state-dir', 'state.backend.rocksdb.localdir'],
  ]);
}
