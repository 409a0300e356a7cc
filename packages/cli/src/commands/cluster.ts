import type { Command } from 'commander';
import path from 'node:path';
import { defaultSettings, getTransportSecurity, parsePort, parsePositiveInt } from '@weir/core';
import { arg } from '../cli-args.js';
import { addDefineOption, type ConfigCliOptions } from '../config-options.js';
import { LocalCluster } from '../local-cluster.js';
import { onShutdown, readyToParent } from '../process-lifecycle.js';
import { addSecurityOptions, applySecurity, securityArgs, securityRecord } from '../security-options.js';

interface ClusterStartCliOptions extends ConfigCliOptions {
  taskmanagers: number;
  slots: number;
  port: number;
  dir: string;
  slotRequestTimeout?: number;
  taskmanagerNodeArgs?: string;
  restPort?: number;
  standbyTaskmanager?: boolean;
}

/** `weir cluster start`: a local cluster of child processes. */
export function registerCluster(program: Command): void {
  const cluster = program.command('cluster').description('run a local cluster');
  addSecurityOptions(
    addDefineOption(
      cluster
        .command('start')
        .description('start a JobManager and TaskManagers as child processes; Ctrl-C stops them all')
        .option('--taskmanagers <n>', 'number of TaskManagers', arg(parsePositiveInt, '--taskmanagers'), 2)
        .option('--slots <n>', 'slots per TaskManager', arg(parsePositiveInt, '--slots'), 2)
        .option(
          '--port <port>',
          'JobManager port (0: any free port)',
          arg(parsePort, '--port'),
          defaultSettings()['jobmanager.rpc.port'],
        )
        .option('--dir <dir>', 'directory for logs and working files', '.weir')
        .option(
          '--rest-port <port>',
          'port of the REST API and dashboard (rest.port; default 8081 when free, else any free port; 0: any free port)',
          arg(parsePort, '--rest-port'),
        )
        .option(
          '--slot-request-timeout <ms>',
          'a job waiting for slots fails after this long',
          arg(parsePositiveInt, '--slot-request-timeout'),
        )
        .option(
          '--standby-taskmanager',
          'keep one TaskManager process started ahead: when a TaskManager dies it takes its id and local state at once, instead of a new process starting',
        )
        .option(
          '--taskmanager-node-args <flags>',
          'Node.js flags for the TaskManager processes, space-separated, e.g. "--max-old-space-size=256"',
        ),
    ),
    'client',
  ).action(startCluster);
}

async function startCluster(o: ClusterStartCliOptions): Promise<void> {
  // a bad file, variable or certificate fails here, before any process starts; this process talks to the JobManager as a client
  applySecurity(o, 'client');
  const security = securityRecord(o);
  const defines = (o.define ?? []).flatMap((d) => ['-D', d]);
  const lc = new LocalCluster({
    taskManagers: o.taskmanagers,
    slots: o.slots,
    port: o.port,
    dir: path.resolve(o.dir),
    jobManagerArgs: [
      ...(o.slotRequestTimeout ? ['--slot-request-timeout', String(o.slotRequestTimeout)] : []),
    ],
    securityArgs: [...securityArgs(o, true), ...defines],
    ...(security ? { clusterFileExtra: { security } } : {}),
    ...(o.taskmanagerNodeArgs
      ? { taskManagerNodeArgs: o.taskmanagerNodeArgs.split(/\s+/).filter(Boolean) }
      : {}),
    ...(o.restPort !== undefined ? { restPort: o.restPort } : {}),
    ...(o.standbyTaskmanager ? { standbyTaskManager: true } : {}),
  });
  onShutdown(() => lc.stop());
  try {
    await lc.start((m) => console.log(m));
  } catch (err) {
    await lc.stop();
    throw err;
  }
  console.log(
    `Local cluster running: JobManager ${lc.jobManagerAddress}, ${o.taskmanagers} TaskManagers x ${o.slots} slots; logs in ${path.resolve(o.dir, 'logs')}. Ctrl-C stops it.`,
  );
  if (lc.restAddress)
    console.log(`Dashboard: ${getTransportSecurity().tls ? 'https' : 'http'}://${lc.restAddress}/`);
  readyToParent(lc.jobManagerAddress, lc.restAddress ? { rest: lc.restAddress } : {});
}
