import type { Command } from 'commander';
import { maskString, resolveTransportSecurity } from '@weir/core';
import {
  addDefineOption,
  addLogLevelOption,
  describeOptions,
  formatConfig,
  resolveCommandConfig,
  type ConfigCliOptions,
} from '../config-options.js';
import { addSecurityOptions } from '../security-options.js';

/** `weir config`: the effective configuration and where each value came from. */
export function registerConfig(program: Command): void {
  addSecurityOptions(
    addLogLevelOption(
      addDefineOption(
        program
          .command('config')
          .description(
            'print the effective configuration: every key, its value (secrets as ***) and where it came from (flag, environment variable, file or default)',
          )
          .option('--json', 'print JSON: key -> { value, source, env }')
          .option('--describe', 'list every key with its environment variable, expected form and default'),
      ),
    ),
    'server',
  ).action((o: ConfigCliOptions & { json?: boolean; describe?: boolean }) => {
    if (o.describe) return console.log(describeOptions());
    const cfg = resolveCommandConfig(o);
    // certificates and token files are read, so a wrong path is reported here too
    resolveTransportSecurity(cfg.toClusterConfig().security, {}, 'client');
    console.log(maskString(formatConfig(cfg, o.json ?? false)));
  });
}
