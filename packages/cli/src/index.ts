/**
 * The `weir` CLI's reusable parts for tests and benchmarks: the local cluster launcher and the
 * development certificates. The CLI itself is bin/weir.ts.
 */
export { LocalCluster, WEIR_BIN, type LocalClusterOptions, type ReadyMessage } from './local-cluster.js';
export { createDevCertificates, type CertOptions, type CreatedCerts } from './certs.js';
