import type { Command } from 'commander';
import { checkHealth, parseAddress, parsePositiveInt } from '@weir/core';
import { arg } from '../cli-args.js';
import { resolveCommandConfig, type ConfigCliOptions } from '../config-options.js';
import { addSecurityOptions, applySecurity } from '../security-options.js';

interface HealthCliOptions extends ConfigCliOptions {
  address?: string;
  service: string;
  timeout: number;
  quiet?: boolean;
}

/** `weir health`: a gRPC health check for container probes. */
export function registerHealth(program: Command): void {
  addSecurityOptions(
    program
      .command('health')
      .description(
        'check a JobManager or TaskManager with the standard gRPC health service (grpc.health.v1.Health); exit 0 when SERVING, 1 otherwise; for container health checks and probes',
      )
      .option('--address <host:port>', 'the process to check (default 127.0.0.1:<jobmanager.rpc.port>)')
      .option('--service <name>', 'a service name (default: the whole process)', '')
      .option('--timeout <ms>', 'give up after this long', arg(parsePositiveInt, '--timeout'), 5000)
      .option('-q, --quiet', 'print nothing'),
    'client',
  ).action(async (o: HealthCliOptions) => {
    const cfg = resolveCommandConfig(o);
    applySecurity(o, 'client', cfg.toClusterConfig());
    const address = o.address ?? `127.0.0.1:${cfg.get('jobmanager.rpc.port')}`;
    parseAddress(address, '--address');
    const status = await checkHealth(address, o.service, o.timeout);
    if (!o.quiet) console.log(`${address}${o.service ? ` ${o.service}` : ''}: ${status}`);
    if (status !== 'SERVING') process.exitCode = 1;
  });
}
