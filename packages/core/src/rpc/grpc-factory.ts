import * as grpc from '@grpc/grpc-js';
import { createHash, timingSafeEqual } from 'node:crypto';
import { checkServerIdentity, type PeerCertificate } from 'node:tls';
import { certificateRole, DEFAULT_MAX_MESSAGE_BYTES, type TransportSecurity } from '../security.js';
import { validateRequest } from './request-validation.js';

/**
 * Every gRPC server and client of weir is made here, and so is their transport security:
 *
 * - TLS on every server and channel when the process is configured with it. Servers ask every
 *   peer for a certificate (mutual TLS) but do not require one at the handshake, so the CLI can
 *   connect with the CA alone; the server interceptor below then requires a *cluster identity*
 *   (a certificate from the cluster CA with a `spiffe://weir/cluster/...` URI SAN) on the
 *   cluster-internal services (JobManagerGateway, TaskExecutorGateway, DataExchange), and the
 *   bearer token on the Dispatcher. A client certificate (`spiffe://weir/client/...`) is never
 *   enough for an internal service. Channels to internal services also check that the server
 *   they reach carries a cluster identity.
 * - The cluster secret, when configured, on every internal call (both ways), so a cluster
 *   without certificates (a local one on loopback) still keeps other processes out.
 * - Bounded message sizes (RESOURCE_EXHAUSTED beyond them).
 * - Every request decoded without throwing and validated (request-validation.ts):
 *   a malformed one gets INVALID_ARGUMENT and the process keeps serving.
 *
 * The settings are per process (`configureTransportSecurity`, called once at start-up by the
 * CLI), so the JobManager and TaskManager code only calls createServer/bindServer/createClient.
 */
let security: TransportSecurity = { maxMessageBytes: DEFAULT_MAX_MESSAGE_BYTES };

export function configureTransportSecurity(s: TransportSecurity): void {
  security = s;
  if (s.tls) silenceIpServerNameWarning();
}

let silenced = false;
/**
 * grpc-js sets the TLS server name to the target host even when it is an IP address, and Node
 * warns about that (DEP0123) on every CLI run. Verification is unaffected (the certificate's IP
 * SAN is checked), so only that one warning is dropped.
 */
function silenceIpServerNameWarning(): void {
  if (silenced) return;
  silenced = true;
  const emit = process.emitWarning.bind(process) as (...args: unknown[]) => void;
  process.emitWarning = ((warning: unknown, ...rest: unknown[]) => {
    const code =
      typeof rest[0] === 'object' && rest[0] !== null ? (rest[0] as { code?: string }).code : rest[1];
    if (code === 'DEP0123') return;
    emit(warning, ...rest);
  }) as typeof process.emitWarning;
}

export function getTransportSecurity(): TransportSecurity {
  return security;
}

/** Services only cluster processes may call: they need a certificate from the cluster CA when TLS is on. */
const INTERNAL_SERVICES = new Set([
  'weir.JobManagerGateway',
  'weir.TaskExecutorGateway',
  'weir.DataExchange',
]);
const CLIENT_SERVICE = 'weir.Dispatcher';
const AUTH_HEADER = 'authorization';
/** Metadata carrying the cluster secret on internal calls. */
const CLUSTER_SECRET_HEADER = 'weir-cluster-secret';

const MALFORMED = Symbol('malformed request');
type Malformed = { [MALFORMED]: string };

function isMalformed(m: unknown): m is Malformed {
  return typeof m === 'object' && m !== null && MALFORMED in m;
}

function digest(s: string): Buffer {
  return createHash('sha256').update(s, 'utf8').digest();
}

/** Constant-time comparison of the presented token with the expected one (over their hashes, so lengths leak nothing). */
export function tokenMatches(presented: string, expected: string): boolean {
  return timingSafeEqual(digest(presented), digest(expected));
}

/**
 * Client authentication of the JobManager's client-facing APIs (the Dispatcher, and any other
 * API for users such as a REST server): with a token configured, `authorization` must be
 * `Bearer <token>`. Returns why the request is refused (answer UNAUTHENTICATED, HTTP 401), or
 * undefined when it may go on. The reason never echoes what was sent. `s` defaults to this
 * process's transport security (`configureTransportSecurity`).
 */
export function checkClientAuthorization(
  authorization: string | undefined,
  s: TransportSecurity = security,
): string | undefined {
  if (!s.token) return undefined;
  const m = /^Bearer (.+)$/.exec(authorization ?? '');
  if (!m)
    return 'This JobManager requires a bearer token: give --token-file, security.auth.token-file or WEIR_AUTH_TOKEN';
  if (!tokenMatches(m[1]!, s.token)) return 'The bearer token was not accepted';
  return undefined;
}

/** A refusal: the status code and why. */
interface Refusal {
  code: grpc.status;
  details: string;
}

/**
 * Authentication of a cluster-internal call: with TLS, a verified peer certificate with a
 * cluster identity (a client identity or none is PERMISSION_DENIED, no certificate from the
 * cluster CA UNAUTHENTICATED); with a cluster secret, the secret (else UNAUTHENTICATED).
 */
function authenticateInternal(
  service: string,
  metadata: grpc.Metadata,
  call: grpc.ServerInterceptingCallInterface,
  s: TransportSecurity,
): Refusal | undefined {
  if (s.tls) {
    // set only when the peer presented a certificate that chains to the cluster CA
    const cert = call.getAuthContext()?.sslPeerCertificate as PeerCertificate | undefined;
    if (!cert)
      return {
        code: grpc.status.UNAUTHENTICATED,
        details: `${service} is for cluster processes only: present a certificate issued by the cluster CA (mutual TLS)`,
      };
    if (certificateRole(cert.subjectaltname) !== 'cluster')
      return {
        code: grpc.status.PERMISSION_DENIED,
        details: `${service} is for cluster processes only: the certificate presented has no cluster identity (a URI SAN spiffe://weir/cluster/<name>, as \`weir cert create\` issues for JobManagers and TaskManagers); client certificates may only call the Dispatcher`,
      };
  }
  if (s.clusterSecret) {
    const values = metadata.get(CLUSTER_SECRET_HEADER);
    const presented = values.length === 1 && typeof values[0] === 'string' ? values[0] : undefined;
    if (presented === undefined || !tokenMatches(presented, s.clusterSecret))
      return {
        code: grpc.status.UNAUTHENTICATED,
        details: `${service} is for cluster processes only: ${presented === undefined ? 'the call carries no cluster secret' : 'the cluster secret was not accepted'} (security.cluster.secret-file or WEIR_CLUSTER_SECRET; \`weir cluster start\` makes one per cluster)`,
      };
  }
  return undefined;
}

/** Why a call is refused, or undefined. Never echoes what the caller sent. */
function authenticate(
  service: string,
  metadata: grpc.Metadata,
  call: grpc.ServerInterceptingCallInterface,
  s: TransportSecurity,
): Refusal | undefined {
  if (service === CLIENT_SERVICE) {
    const values = metadata.get(AUTH_HEADER);
    const header = values.length === 1 && typeof values[0] === 'string' ? values[0] : undefined;
    const why = checkClientAuthorization(header, s);
    return why ? { code: grpc.status.UNAUTHENTICATED, details: why } : undefined;
  }
  if (INTERNAL_SERVICES.has(service)) return authenticateInternal(service, metadata, call, s);
  return undefined;
}

/** Authentication and request validation for every call, ahead of the handlers. */
const securityInterceptor: grpc.ServerInterceptor = (method, call) => {
  const path = method.path;
  const service = path.split('/')[1] ?? '';
  let refused = false;
  const refuse = (code: grpc.status, details: string): void => {
    if (refused) return;
    refused = true;
    call.sendStatus({ code, details });
  };
  const listener = new grpc.ServerListenerBuilder()
    .withOnReceiveMetadata((metadata, next) => {
      const why = authenticate(service, metadata, call, security);
      if (why) return refuse(why.code, why.details);
      // the token and the secret are checked; handlers never see them
      metadata.remove(AUTH_HEADER);
      metadata.remove(CLUSTER_SECRET_HEADER);
      next(metadata);
    })
    .withOnReceiveMessage((message, next) => {
      if (refused) return;
      if (isMalformed(message))
        return refuse(grpc.status.INVALID_ARGUMENT, `Malformed ${path} request: ${message[MALFORMED]}`);
      const problem = validateRequest(path, message);
      if (problem) return refuse(grpc.status.INVALID_ARGUMENT, `Invalid ${path} request: ${problem}`);
      next(message);
    })
    .withOnReceiveHalfClose((next) => {
      if (!refused) next();
    })
    .build();
  return new grpc.ServerInterceptingCall(call, { start: (next) => next(listener) });
};

/** A server whose services decode requests without ever throwing: a decoding error becomes INVALID_ARGUMENT. */
class WeirServer extends grpc.Server {
  override addService(
    service: grpc.ServiceDefinition,
    implementation: grpc.UntypedServiceImplementation,
  ): void {
    const safe: Record<string, grpc.MethodDefinition<unknown, unknown>> = {};
    for (const [name, def] of Object.entries(service)) {
      const decode = def.requestDeserialize;
      safe[name] = {
        ...def,
        requestDeserialize: (buf: Buffer): unknown => {
          try {
            return decode(buf);
          } catch (err) {
            return { [MALFORMED]: (err as Error).message } satisfies Malformed;
          }
        },
      };
    }
    super.addService(safe as grpc.ServiceDefinition, implementation);
  }
}

export function createServer(): grpc.Server {
  return new WeirServer({
    'grpc.max_receive_message_length': security.maxMessageBytes,
    'grpc.max_send_message_length': security.maxMessageBytes,
    'grpc.keepalive_permit_without_calls': 1,
    'grpc.http2.min_ping_interval_without_data_ms': 5_000,
    interceptors: [securityInterceptor],
  });
}

/**
 * Certificates that never change, for the certificate-provider credentials of grpc-js. Updates
 * are delivered on the next tick, as a file-watching provider would: grpc-js registers its
 * listeners before the server that receives the update.
 */
class StaticCertificateProvider implements grpc.experimental.CertificateProvider {
  constructor(
    private readonly ca: Buffer,
    private readonly cert: Buffer,
    private readonly key: Buffer,
  ) {}
  addCaCertificateListener(l: grpc.experimental.CaCertificateUpdateListener): void {
    process.nextTick(() => l({ caCertificate: this.ca }));
  }
  removeCaCertificateListener(): void {}
  addIdentityCertificateListener(l: grpc.experimental.IdentityCertificateUpdateListener): void {
    process.nextTick(() => l({ certificate: this.cert, privateKey: this.key }));
  }
  removeIdentityCertificateListener(): void {}
}

function serverCredentials(s: TransportSecurity): grpc.ServerCredentials {
  if (!s.tls) return grpc.ServerCredentials.createInsecure();
  const { ca, cert, key } = s.tls;
  if (!cert || !key)
    throw new Error('A TLS server needs a certificate and key (security.ssl.cert, security.ssl.key)');
  const provider = new StaticCertificateProvider(ca, cert, key);
  // request a client certificate, verify it against the CA, but let clients without one (the CLI) in:
  // the interceptor decides per service
  return grpc.experimental.createCertificateProviderServerCredentials(provider, provider, false);
}

/** Binds `host:port` (port 0 picks a free one) and resolves to the bound port. */
export function bindServer(server: grpc.Server, host: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const target = host.includes(':') && !host.startsWith('[') ? `[${host}]:${port}` : `${host}:${port}`;
    server.bindAsync(target, serverCredentials(security), (err, bound) => {
      if (err) reject(new Error(`Cannot listen on ${target}: ${err.message}`));
      else resolve(bound);
    });
  });
}

type ClientCtor<C> = (new (
  address: string,
  credentials: grpc.ChannelCredentials,
  options?: grpc.ClientOptions,
) => C) & { service?: grpc.ServiceDefinition };

/**
 * A server of an internal service must carry a cluster identity, besides the usual host name
 * check (skipped with security.ssl.internal.verify-hostname: false).
 */
function checkClusterServer(verifyHostname: boolean, host: string, cert: PeerCertificate): Error | undefined {
  const err = verifyHostname ? checkServerIdentity(host, cert) : undefined;
  if (err) return err;
  if (certificateRole(cert.subjectaltname) !== 'cluster')
    return new Error(
      `The server at ${host} has no cluster identity (a URI SAN spiffe://weir/cluster/<name>): it is not a JobManager or TaskManager of this cluster`,
    );
  return undefined;
}

function channelCredentials(s: TransportSecurity, internal: boolean): grpc.ChannelCredentials {
  if (!s.tls) return grpc.credentials.createInsecure();
  return grpc.credentials.createSsl(
    s.tls.ca,
    s.tls.key ?? null,
    s.tls.cert ?? null,
    internal
      ? {
          checkServerIdentity: (host, cert) =>
            checkClusterServer(s.tls?.verifyInternalHostname !== false, host, cert as PeerCertificate),
        }
      : {},
  );
}

/** Metadata for every call of a client: a value, or a function read at each call (a session that changes). */
export type ClientHeaders = Record<string, string | (() => string)>;

/** Adds metadata (the bearer token, the cluster secret, a session) to every call of a client. */
function metadataInterceptor(headers: ClientHeaders): grpc.Interceptor {
  const entries = Object.entries(headers);
  return (options, nextCall) =>
    new grpc.InterceptingCall(nextCall(options), {
      start(metadata, listener, next) {
        for (const [k, v] of entries) {
          const value = typeof v === 'function' ? v() : v;
          if (value) metadata.set(k, value);
        }
        next(metadata, listener);
      },
    });
}

/**
 * A client of `address` with this process's transport security; `override` replaces parts of
 * it for this one client (tests use it to connect with other credentials). The bearer token
 * goes only to the Dispatcher, the cluster secret only to internal services; `headers` are
 * added to every call (the JobManager's session with a TaskManager).
 */
export function createClient<C>(
  ctor: ClientCtor<C>,
  address: string,
  override?: Partial<TransportSecurity>,
  headers: ClientHeaders = {},
): C {
  const s: TransportSecurity = override ? { ...security, ...override } : security;
  if (s.tls) silenceIpServerNameWarning();
  const paths = Object.values(ctor.service ?? {}).map((d) => d.path);
  const isDispatcher = paths.some((p) => p.startsWith(`/${CLIENT_SERVICE}/`));
  const isInternal = paths.some((p) => INTERNAL_SERVICES.has(p.split('/')[1] ?? ''));
  const all: ClientHeaders = { ...headers };
  if (isDispatcher && s.token) all[AUTH_HEADER] = `Bearer ${s.token}`;
  if (isInternal && s.clusterSecret) all[CLUSTER_SECRET_HEADER] = s.clusterSecret;
  const options: grpc.ClientOptions = {
    'grpc.max_receive_message_length': s.maxMessageBytes,
    'grpc.max_send_message_length': s.maxMessageBytes,
    'grpc.keepalive_time_ms': 10_000,
    'grpc.keepalive_timeout_ms': 5_000,
    'grpc.keepalive_permit_without_calls': 1,
    // a lost peer must be noticed quickly; do not keep reconnecting for long
    'grpc.initial_reconnect_backoff_ms': 200,
    'grpc.max_reconnect_backoff_ms': 2_000,
    ...(Object.keys(all).length > 0 ? { interceptors: [metadataInterceptor(all)] } : {}),
  };
  return new ctor(address, channelCredentials(s, isInternal), options);
}

/** Stops a server: lets calls finish for `graceMs`, then cuts what is left. */
export function shutdownServer(server: grpc.Server, graceMs = 2_000): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      server.forceShutdown();
      resolve();
    }, graceMs);
    timer.unref();
    server.tryShutdown(() => {
      clearTimeout(timer);
      resolve();
    });
  });
}

/** Resolves when the client's channel is connected, or rejects naming the address. */
export function waitForReady(client: grpc.Client, address: string, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    client.waitForReady(Date.now() + timeoutMs, (err) => {
      if (err) reject(new Error(`Cannot reach ${address} within ${timeoutMs / 1000} s: ${err.message}`));
      else resolve();
    });
  });
}

type UnaryMethod = (
  req: any,
  meta: grpc.Metadata,
  opts: grpc.CallOptions,
  cb: (err: grpc.ServiceError | null, res?: any) => void,
) => unknown;

/** A unary call as a Promise, with a deadline. Pass the method bound to its client. */
export function unary<Res>(fn: UnaryMethod, req: unknown, timeoutMs = 30_000): Promise<Res> {
  return new Promise((resolve, reject) => {
    fn(req, new grpc.Metadata(), { deadline: Date.now() + timeoutMs }, (err, res) => {
      if (err) reject(err);
      else resolve(res as Res);
    });
  });
}
