import { Option, type Command } from 'commander';
import path from 'node:path';
import {
  configureTransportSecurity,
  parseSize,
  resolveTransportSecurity,
  type ClusterConfig,
  type TransportSecurity,
} from '@weir/core';
import { resolveCommandConfig } from './config-options.js';

/** Security flags shared by every command that talks gRPC; they win over the configuration file. */
export interface SecurityCliOptions {
  config?: string;
  sslCa?: string;
  sslCert?: string;
  sslKey?: string;
  tokenFile?: string;
  maxMessageSize?: number;
  insecure?: boolean;
}

/** What `weir cluster start` records in <dir>/cluster.json so later commands in that directory connect the same way (paths only, never a secret). */
export interface ClusterSecurityRecord {
  config?: string;
  sslCa?: string;
  sslCert?: string;
  sslKey?: string;
  tokenFile?: string;
}

export function addSecurityOptions(cmd: Command, role: 'server' | 'client'): Command {
  cmd
    .option(
      '--config <file>',
      'configuration file (YAML, Flink key names); the environment (WEIR_*) and flags win over it',
    )
    .option('--ssl-ca <pem>', 'CA certificate every peer must chain to (enables TLS; security.ssl.ca)')
    .option(
      '--ssl-cert <pem>',
      `certificate this process presents (security.ssl.cert)${role === 'server' ? '' : '; optional for clients'}`,
    )
    .option('--ssl-key <pem>', 'private key of that certificate (security.ssl.key)')
    .option(
      '--token-file <file>',
      `file holding the bearer token ${role === 'server' ? 'clients must present' : 'to present'} (security.auth.token-file; or env WEIR_AUTH_TOKEN)`,
    )
    .addOption(
      new Option(
        '--max-message-size <size>',
        'largest gRPC message, e.g. 64mb (rpc.max-message-size; default 128mb)',
      ).argParser((v) => parseSize(v, '--max-message-size')),
    );
  if (role === 'server')
    cmd.option('--insecure', 'allow listening on a non-loopback address without TLS and a token');
  return cmd;
}

/**
 * Resolves the process's transport security from flags, the environment and the configuration
 * file (see config-options.ts), and applies it to every gRPC server and channel.
 */
export function applySecurity(
  o: SecurityCliOptions,
  role: 'server' | 'client',
  config?: ClusterConfig,
): TransportSecurity {
  const c = config ?? resolveCommandConfig(o).toClusterConfig();
  const sec = resolveTransportSecurity(c.security, {}, role);
  configureTransportSecurity(sec);
  return sec;
}

/** The same flags for child processes (absolute paths; the token stays in its file or the environment). */
export function securityArgs(o: SecurityCliOptions, withConfig: boolean): string[] {
  const args: string[] = [];
  const add = (flag: string, v: string | undefined): void => {
    if (v) args.push(flag, path.resolve(v));
  };
  if (withConfig) add('--config', o.config);
  add('--ssl-ca', o.sslCa);
  add('--ssl-cert', o.sslCert);
  add('--ssl-key', o.sslKey);
  add('--token-file', o.tokenFile);
  if (o.maxMessageSize) args.push('--max-message-size', String(o.maxMessageSize));
  return args;
}

export function securityRecord(o: SecurityCliOptions): ClusterSecurityRecord | undefined {
  const r: ClusterSecurityRecord = {};
  for (const k of ['config', 'sslCa', 'sslCert', 'sslKey', 'tokenFile'] as const)
    if (o[k]) r[k] = path.resolve(o[k]);
  return Object.keys(r).length > 0 ? r : undefined;
}
