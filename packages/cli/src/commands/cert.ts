import type { Command } from 'commander';
import path from 'node:path';
import { parsePositiveInt } from '@weir/core';
import { createDevCertificates } from '../certs.js';
import { createKubernetesSecrets, inClusterApi } from '../kubernetes-secrets.js';
import { arg } from '../cli-args.js';

/** `weir cert create`: development certificates and a token for TLS. */
export function registerCert(program: Command): void {
  const cert = program.command('cert').description('development certificates for TLS');
  cert
    .command('create')
    .description(
      'create a cluster CA, a certificate for JobManagers and TaskManagers, a client certificate and a token (pure JavaScript, no openssl needed)',
    )
    .requiredOption(
      '--dir <dir>',
      'directory for ca.pem, node.pem, node-key.pem, client.pem, client-key.pem and token',
    )
    .option(
      '--hostname <name...>',
      'extra DNS names or IP addresses for the node certificate (localhost, 127.0.0.1 and ::1 are always in)',
    )
    .option(
      '--service <name...>',
      'also a cluster certificate per service name (<name>.pem, DNS SAN <name>, identity spiffe://weir/cluster/<name>), e.g. jobmanager taskmanager',
    )
    .option('--client-name <name>', 'name in the client identity spiffe://weir/client/<name>', 'user')
    .option('--days <n>', 'validity in days', arg(parsePositiveInt, '--days'), 825)
    .option('--force', 'overwrite existing files')
    .option(
      '--keep-existing',
      'if every file exists already, keep them and succeed (for a one-shot container run on every start)',
    )
    .action(createCertificates);
  cert
    .command('kubernetes-secrets')
    .description(
      "in a pod: make the cluster CA, a certificate per service and the token, and store them as Secrets of the pod's namespace unless they exist (the weir-certs Job of deploy/base)",
    )
    .requiredOption('--service <name...>', 'cluster services, one Secret <prefix>-tls-<name> each')
    .option('--hostname <name...>', 'extra DNS names for every service certificate, e.g. jobmanager.weir.svc')
    .option('--prefix <prefix>', 'name prefix of the Secrets', 'weir')
    .option('--days <n>', 'validity in days', arg(parsePositiveInt, '--days'), 825)
    .option('--token-only', 'only the token Secret (certificates come from cert-manager)')
    .action(
      async (o: {
        service: string[];
        hostname?: string[];
        prefix: string;
        days: number;
        tokenOnly?: boolean;
      }) => {
        await createKubernetesSecrets(inClusterApi(), {
          services: o.service,
          prefix: o.prefix,
          days: o.days,
          ...(o.hostname ? { hostnames: o.hostname } : {}),
          ...(o.tokenOnly ? { tokenOnly: true } : {}),
        });
      },
    );
}

async function createCertificates(o: {
  dir: string;
  hostname?: string[];
  service?: string[];
  clientName: string;
  days: number;
  force?: boolean;
  keepExisting?: boolean;
}): Promise<void> {
  const c = await createDevCertificates({
    dir: o.dir,
    days: o.days,
    clientName: o.clientName,
    ...(o.service ? { services: o.service } : {}),
    ...(o.hostname ? { hostnames: o.hostname } : {}),
    ...(o.force ? { force: true } : {}),
    ...(o.keepExisting ? { keepExisting: true } : {}),
  });
  if (c.kept) {
    console.log(`Keeping the existing certificates and token in ${path.resolve(o.dir)}`);
    return;
  }
  console.log(`Created in ${path.resolve(o.dir)}:
  ${path.basename(c.ca)}, ${path.basename(c.caKey)}     cluster CA (keep ca-key.pem private; it can issue certificates)
  ${path.basename(c.cert)}, ${path.basename(c.key)} cluster identity for JobManagers and TaskManagers (spiffe://weir/cluster/node), SANs: ${['localhost', '127.0.0.1', '::1', ...(o.hostname ?? [])].join(', ')}
${Object.entries(c.services)
  .map(
    ([n, f]) =>
      `  ${path.basename(f.cert)}, ${path.basename(f.key)} cluster identity of service ${n} (spiffe://weir/cluster/${n}), SANs: ${n}, localhost, ...\n`,
  )
  .join(
    '',
  )}  ${path.basename(c.clientCert)}, ${path.basename(c.clientKey)} client identity (spiffe://weir/client/${o.clientName}): Dispatcher only, never internal services
  ${path.basename(c.token)}                    bearer token for clients
Use them in a configuration file:
  security.ssl.enabled: true
  security.ssl.ca: ${c.ca}
  security.ssl.cert: ${c.cert}
  security.ssl.key: ${c.key}
  security.auth.token-file: ${c.token}`);
}
