import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { defaultSettings, type SecurityConfig } from './config.js';
import { registerSecret } from './secrets.js';

/** rpc.max-message-size's default (128 MiB): large job bundles and collected results fit; a single message cannot exhaust memory. */
export const DEFAULT_MAX_MESSAGE_BYTES = defaultSettings()['rpc.max-message-size'];

/** PEM material of this process: the cluster CA, and the certificate it presents (servers always, clients optionally). */
export interface TlsMaterial {
  ca: Buffer;
  cert?: Buffer;
  key?: Buffer;
  /** where they came from, for messages */
  files: { ca: string; cert?: string; key?: string };
  /**
   * false: channels between cluster processes skip the host name check (TaskManagers that
   * advertise addresses no certificate can name); the CA and the cluster identity still count
   */
  verifyInternalHostname?: boolean;
}

/**
 * The transport security of one process, set once at start-up (see `configureTransportSecurity`)
 * and applied by the gRPC factory to every server and channel it makes.
 */
export interface TransportSecurity {
  /** TLS on every server and channel; servers ask for client certificates (mutual TLS) */
  tls?: TlsMaterial;
  /** the bearer token: a server requires it on Dispatcher calls, a client sends it there */
  token?: string;
  /**
   * The cluster secret: a server requires it on the internal services (JobManagerGateway,
   * TaskExecutorGateway, DataExchange), a client sends it there. It authenticates cluster
   * processes where there are no certificates (a local cluster on loopback).
   */
  clusterSecret?: string;
  maxMessageBytes: number;
}

/** Security settings as given on the command line; they win over the configuration file. */
export interface SecurityFlags {
  sslCa?: string;
  sslCert?: string;
  sslKey?: string;
  tokenFile?: string;
  /** false: turn TLS off even if the file enables it */
  ssl?: boolean;
  maxMessageSize?: number;
}

function readPem(file: string, what: string, kind: 'CERTIFICATE' | 'PRIVATE KEY'): Buffer {
  let data: Buffer;
  try {
    data = readFileSync(file);
  } catch (e) {
    throw new Error(`Cannot read ${what} ${file}: ${(e as Error).message}`);
  }
  if (
    !data
      .toString('latin1')
      .includes(kind === 'CERTIFICATE' ? '-----BEGIN CERTIFICATE-----' : 'PRIVATE KEY-----')
  ) {
    throw new Error(`${what} ${file} is not a PEM ${kind === 'CERTIFICATE' ? 'certificate' : 'private key'}`);
  }
  return data;
}

/** Reads a token file: the first line, trimmed. An empty file is an error. */
export function readTokenFile(file: string, key = 'security.auth.token-file'): string {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new Error(
      `Cannot read the ${key === 'security.auth.token-file' ? 'token' : 'secret'} file ${file} (${key}): ${(e as Error).message}`,
    );
  }
  const token = text.split(/\r?\n/)[0]!.trim();
  if (token.length < 16)
    throw new Error(
      `The ${key === 'security.auth.token-file' ? 'token' : 'secret'} in ${file} (${key}) is too short: use at least 16 characters (e.g. \`openssl rand -hex 32\`)`,
    );
  return token;
}

/**
 * Resolves the security of a process from flags and its resolved configuration (which holds
 * `WEIR_AUTH_TOKEN` as security.auth.token, see resolveConfig). `role` 'server' (JobManager, TaskManager) needs a certificate and key
 * when TLS is on; a 'client' (the CLI) needs only the CA and sends its certificate if it has one.
 * Reading the token registers it as a secret, so it is masked in every log line.
 */
export function resolveTransportSecurity(
  config: SecurityConfig | undefined,
  flags: SecurityFlags = {},
  role: 'server' | 'client' = 'server',
): TransportSecurity {
  const c = config ?? {};
  const ca = flags.sslCa ?? c.sslCa;
  const cert = flags.sslCert ?? c.sslCert;
  const key = flags.sslKey ?? c.sslKey;
  const enabled =
    flags.ssl === false ? false : (c.sslEnabled ?? (ca !== undefined || cert !== undefined)) === true;
  const out: TransportSecurity = {
    maxMessageBytes: flags.maxMessageSize ?? c.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES,
  };
  if (enabled) {
    if (!ca)
      throw new Error(
        'TLS is enabled but no CA is given: set security.ssl.ca or --ssl-ca (create one with `weir cert create --dir DIR`)',
      );
    if (role === 'server' && (!cert || !key)) {
      throw new Error(
        'TLS is enabled but this process has no certificate: set security.ssl.cert and security.ssl.key, or --ssl-cert and --ssl-key',
      );
    }
    if ((cert && !key) || (key && !cert))
      throw new Error('security.ssl.cert and security.ssl.key go together: give both or neither');
    out.tls = {
      ca: readPem(ca, 'the CA certificate (security.ssl.ca)', 'CERTIFICATE'),
      files: { ca, ...(cert ? { cert } : {}), ...(key ? { key } : {}) },
      ...(cert ? { cert: readPem(cert, 'the certificate (security.ssl.cert)', 'CERTIFICATE') } : {}),
      ...(key ? { key: readPem(key, 'the private key (security.ssl.key)', 'PRIVATE KEY') } : {}),
      ...(c.verifyInternalHostname === false ? { verifyInternalHostname: false } : {}),
    };
  }
  const tokenFile = flags.tokenFile ?? c.tokenFile;
  const token = tokenFile ? readTokenFile(tokenFile) : c.token?.trim() || undefined;
  if (token) {
    if (!tokenFile && token.length < 16)
      throw new Error(
        'The token (security.auth.token, WEIR_SECURITY_AUTH_TOKEN or WEIR_AUTH_TOKEN) is too short: use at least 16 characters',
      );
    registerSecret(token);
    out.token = token;
  }
  const secret = c.clusterSecretFile
    ? readTokenFile(c.clusterSecretFile, 'security.cluster.secret-file')
    : c.clusterSecret?.trim() || undefined;
  if (secret) {
    if (!c.clusterSecretFile && secret.length < 16)
      throw new Error(
        'The cluster secret (security.cluster.secret or WEIR_CLUSTER_SECRET) is too short: use at least 16 characters',
      );
    registerSecret(secret);
    out.clusterSecret = secret;
  }
  return out;
}

/**
 * A warning for a JobManager or TaskManager whose internal services have no authentication (no
 * TLS and no cluster secret): any process that reaches its port can join or feed the cluster.
 * `weir cluster start` always sets a secret; a process started by hand may not.
 */
export function openInternalServicesWarning(sec: TransportSecurity): string | undefined {
  if (sec.tls || sec.clusterSecret) return undefined;
  return (
    'Warning: the internal services (JobManagerGateway, TaskExecutorGateway, DataExchange) accept any caller: ' +
    'there is neither TLS nor a cluster secret. Give every process of the cluster the same ' +
    'security.cluster.secret-file (or WEIR_CLUSTER_SECRET), or turn on TLS (see the Security section of the README).'
  );
}

/** URI SAN prefix of the identities of a cluster's own processes (JobManagers, TaskManagers). */
export const CLUSTER_IDENTITY_PREFIX = 'spiffe://weir/cluster/';
/** URI SAN prefix of client identities (users, tools): they may call the Dispatcher, never the internal services. */
export const CLIENT_IDENTITY_PREFIX = 'spiffe://weir/client/';

/** The URI subject alternative names of a peer certificate (Node's `subjectaltname`: `DNS:a, URI:spiffe://...`). */
export function certificateUris(subjectAltName: string | undefined): string[] {
  if (!subjectAltName) return [];
  const out: string[] = [];
  for (const part of subjectAltName.split(/,\s*/)) if (part.startsWith('URI:')) out.push(part.slice(4));
  return out;
}

/** The role a verified peer certificate carries: 'cluster', 'client', or undefined for neither. */
export function certificateRole(subjectAltName: string | undefined): 'cluster' | 'client' | undefined {
  const uris = certificateUris(subjectAltName);
  if (uris.some((u) => u.startsWith(CLUSTER_IDENTITY_PREFIX) && u.length > CLUSTER_IDENTITY_PREFIX.length))
    return 'cluster';
  if (uris.some((u) => u.startsWith(CLIENT_IDENTITY_PREFIX) && u.length > CLIENT_IDENTITY_PREFIX.length))
    return 'client';
  return undefined;
}

/** True for 127.0.0.0/8, ::1 and localhost. */
export function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  if (h === 'localhost' || h.endsWith('.localhost')) return true;
  if (isIP(h) === 4) return h.startsWith('127.');
  if (isIP(h) === 6) return h === '::1' || h.startsWith('::ffff:127.');
  return false;
}

/**
 * Safe defaults: a process that listens on a non-loopback address must have TLS and (for the
 * JobManager, which accepts jobs, i.e. code) a token, unless the operator says `--insecure`.
 * Returns why it refuses, or undefined.
 */
export function checkExposure(
  host: string,
  sec: TransportSecurity,
  role: 'JobManager' | 'TaskManager',
  insecure: boolean,
): string | undefined {
  if (insecure || isLoopback(host)) return undefined;
  const missing: string[] = [];
  if (!sec.tls)
    missing.push(
      'TLS (security.ssl.enabled with security.ssl.ca/cert/key, or --ssl-ca/--ssl-cert/--ssl-key)',
    );
  if (role === 'JobManager' && !sec.token)
    missing.push('client authentication (security.auth.token-file, --token-file or WEIR_AUTH_TOKEN)');
  if (missing.length === 0) return undefined;
  return (
    `Refusing to listen on ${host}, which is not a loopback address, without ${missing.join(' and ')}: ` +
    `anyone who can reach it could ${role === 'JobManager' ? 'submit jobs, which run arbitrary code' : 'deploy tasks, which run arbitrary code'}. ` +
    'Configure security (see the Security section of the README), listen on 127.0.0.1, or pass --insecure to accept the risk.'
  );
}

/**
 * Metadata with which a JobManager shows a TaskManager that it is the JobManager the TaskManager
 * registered with: the session the TaskManager sent in that registration.
 */
export const JOBMANAGER_SESSION_HEADER = 'weir-jobmanager-session';

/**
 * Metadata with which a TaskManager shows the JobManager which registered TaskManager it is (the
 * same session): task states, acknowledgements, collected records and bundle downloads are
 * accepted only from the TaskManager that hosts the execution or the job.
 */
export const TASKMANAGER_SESSION_HEADER = 'weir-taskmanager-session';
