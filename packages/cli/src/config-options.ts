import { Option, type Command } from 'commander';
import path from 'node:path';
import {
  CONFIG_OPTIONS,
  envVarForKey,
  fileStorageUri,
  isStorageUri,
  parseDefinitions,
  resolveConfig,
  type EffectiveConfig,
  type FlagValue,
} from '@weir/core';
import type { SecurityCliOptions } from './security-options.js';

/** Options every command that reads the configuration has, besides its own flags. */
export interface ConfigCliOptions extends SecurityCliOptions {
  define?: string[];
  logLevel?: string;
}

export function addDefineOption(cmd: Command): Command {
  return cmd.addOption(
    new Option(
      '-D, --define <key=value>',
      'set any configuration key (repeatable); wins over the environment and the file',
    ).argParser((v: string, prev: string[] | undefined) => [...(prev ?? []), v]),
  );
}

export function addLogLevelOption(cmd: Command): Command {
  return cmd.option(
    '--log-level <level>',
    'fatal, error, warn, info, debug, trace or silent (log.level; default info)',
  );
}

/** How a command's option becomes a key: `transform` turns the flag's value into the key's form. */
export type FlagMapping = [option: string, flag: string, key: string, transform?: (v: unknown) => unknown];

const abs = (v: unknown): unknown => (typeof v === 'string' ? path.resolve(v) : v);
/** A directory or URI on the command line becomes a storage URI (a relative directory is relative to the current one). */
export const storage = (v: unknown): unknown =>
  typeof v === 'string' && !isStorageUri(v) ? fileStorageUri(v) : v;

/** The security flags every gRPC command has, as keys. */
export const SECURITY_FLAGS: FlagMapping[] = [
  ['sslCa', '--ssl-ca', 'security.ssl.ca', abs],
  ['sslCert', '--ssl-cert', 'security.ssl.cert', abs],
  ['sslKey', '--ssl-key', 'security.ssl.key', abs],
  ['tokenFile', '--token-file', 'security.auth.token-file', abs],
  ['maxMessageSize', '--max-message-size', 'rpc.max-message-size'],
  ['insecure', '--insecure', 'security.insecure'],
  ['logLevel', '--log-level', 'log.level'],
];

/**
 * The effective configuration of this command: defaults < --config file < WEIR_* environment <
 * flags (`mapping`, then -D). This is the process edge: the environment is read here once, and
 * the command hands the typed settings (`cfg.settings`) to what it starts as arguments.
 */
export function resolveCommandConfig<T extends ConfigCliOptions>(
  opts: T,
  mapping: FlagMapping[] = [],
  env: NodeJS.ProcessEnv = process.env,
): EffectiveConfig {
  const o = opts as ConfigCliOptions & Record<string, unknown>;
  const flags: FlagValue[] = [];
  for (const [opt, flag, key, transform] of [...SECURITY_FLAGS, ...mapping]) {
    const v = o[opt];
    if (v === undefined) continue;
    flags.push({ key, value: transform ? transform(v) : v, flag });
  }
  flags.push(...parseDefinitions(o.define));
  return resolveConfig({ ...(o.config ? { file: o.config } : {}), env, flags });
}

function show(v: unknown): string {
  if (v === undefined) return '-';
  if (Array.isArray(v)) return v.join(',');
  return String(v);
}

/** `weir config`: every key, its effective value (secrets masked) and where it came from. */
export function formatConfig(cfg: EffectiveConfig, json: boolean): string {
  const rows = cfg.describe();
  if (json)
    return JSON.stringify(
      Object.fromEntries(rows.map((r) => [r.key, { value: r.value ?? null, source: r.source, env: r.env }])),
      null,
      2,
    );
  const w = Math.max(...rows.map((r) => r.key.length));
  const vw = Math.min(48, Math.max(...rows.map((r) => show(r.value).length)));
  return [
    'precedence: flags > environment (WEIR_*) > configuration file > defaults',
    '',
    `${'key'.padEnd(w)}  ${'value'.padEnd(vw)}  source`,
    ...rows.map((r) => `${r.key.padEnd(w)}  ${show(r.value).padEnd(vw)}  ${r.source}`),
  ].join('\n');
}

/** `weir config --describe`: every key with its variable, form and meaning. */
export function describeOptions(): string {
  return CONFIG_OPTIONS.map(
    (opt) =>
      `${opt.key}\n    env ${envVarForKey(opt.key)}${opt.envAliases ? ` (also ${opt.envAliases.join(', ')})` : ''}\n    ${opt.form}${opt.default !== undefined ? `; default ${show(opt.default)}` : ''}\n    ${opt.description}`,
  ).join('\n');
}
