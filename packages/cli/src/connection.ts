/** How client commands find and reach the JobManager: address, security, connection. */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { ClusterClient } from '@weir/client';
import { defaultSettings } from '@weir/core';
import { applySecurity, type ClusterSecurityRecord, type SecurityCliOptions } from './security-options.js';

const DEFAULTS = defaultSettings();
/** jobmanager.rpc.address and jobmanager.rpc.port's defaults */
const DEFAULT_JOBMANAGER = `${DEFAULTS['jobmanager.rpc.address']}:${DEFAULTS['jobmanager.rpc.port']}`;

/** What `weir cluster start` leaves in .weir/cluster.json for later commands in this directory. */
interface ClusterFile {
  jobmanager: string;
  security?: ClusterSecurityRecord;
}

function readClusterFile(): ClusterFile | undefined {
  const clusterFile = path.resolve('.weir', 'cluster.json');
  if (!existsSync(clusterFile)) return undefined;
  try {
    return JSON.parse(readFileSync(clusterFile, 'utf8')) as ClusterFile;
  } catch {
    return undefined;
  }
}

/** --jobmanager, else WEIR_JOBMANAGER, else a local cluster started here, else the default port. */
export function jobManagerAddress(flag: string | undefined): string {
  if (flag) return flag;
  if (process.env.WEIR_JOBMANAGER) return process.env.WEIR_JOBMANAGER;
  return readClusterFile()?.jobmanager ?? DEFAULT_JOBMANAGER;
}

/**
 * A client command's security: its flags and --config, else (when it talks to the local cluster
 * of this directory) what `weir cluster start` recorded, plus WEIR_AUTH_TOKEN.
 */
export function clientSecurity(o: SecurityCliOptions & { jobmanager?: string }): void {
  const given = o.config || o.sslCa || o.sslCert || o.tokenFile;
  const cf = !given && !o.jobmanager && !process.env.WEIR_JOBMANAGER ? readClusterFile() : undefined;
  applySecurity(given || !cf?.security ? o : { ...cf.security, ...o }, 'client');
}

/** Runs `fn` with a client connected to the command's JobManager, and closes it. */
export async function withClient<T>(
  o: SecurityCliOptions & { jobmanager?: string },
  fn: (c: ClusterClient) => Promise<T>,
): Promise<T> {
  clientSecurity(o);
  const c = await ClusterClient.connect(jobManagerAddress(o.jobmanager));
  try {
    return await fn(c);
  } finally {
    c.close();
  }
}
