import * as grpc from '@grpc/grpc-js';
import {
  HealthImplementation,
  service as healthServiceDefinition,
  type ServingStatus,
} from 'grpc-health-check';
import { createClient } from './grpc-factory.js';

export type { ServingStatus };

/** The standard service name, as probes (grpc_health_probe, Kubernetes grpc probes) call it. */
export const HEALTH_SERVICE = 'grpc.health.v1.Health';

/**
 * The standard gRPC health-checking service (grpc.health.v1.Health, from grpc-node's
 * grpc-health-check) on a weir server. The overall status ('') and each named service start
 * NOT_SERVING; the process says when it is ready. The security interceptor lets health calls
 * through without a token or client certificate (a probe has neither); with TLS on, the probe
 * still needs the cluster CA to complete the handshake.
 */
export class HealthReporter {
  private readonly impl: HealthImplementation;
  private current: ServingStatus = 'NOT_SERVING';

  constructor(
    server: grpc.Server,
    private readonly services: string[],
  ) {
    this.impl = new HealthImplementation(
      Object.fromEntries(['', ...services].map((s) => [s, 'NOT_SERVING' as ServingStatus])),
    );
    this.impl.addToServer(server);
  }

  get status(): ServingStatus {
    return this.current;
  }

  set(status: ServingStatus): void {
    if (status === this.current) return;
    this.current = status;
    for (const s of ['', ...this.services]) this.impl.setStatus(s, status);
  }
}

interface HealthClient extends grpc.Client {
  Check(
    req: { service: string },
    meta: grpc.Metadata,
    opts: grpc.CallOptions,
    cb: (err: grpc.ServiceError | null, res?: { status: string | number }) => void,
  ): void;
}

const HealthClientCtor = grpc.makeGenericClientConstructor(
  healthServiceDefinition as unknown as grpc.ServiceDefinition,
  'Health',
) as unknown as (new (
  address: string,
  credentials: grpc.ChannelCredentials,
  options?: grpc.ClientOptions,
) => HealthClient) & { service: grpc.ServiceDefinition };

const STATUS_NAMES = ['UNKNOWN', 'SERVING', 'NOT_SERVING', 'SERVICE_UNKNOWN'];

/**
 * Calls Health/Check on `address` with this process's transport security. Resolves to the
 * status name (SERVING, NOT_SERVING, ...); rejects when the server cannot be reached or does not
 * know the service.
 */
export function checkHealth(address: string, service = '', timeoutMs = 5_000): Promise<string> {
  const client = createClient(HealthClientCtor, address);
  return new Promise<string>((resolve, reject) => {
    client.Check({ service }, new grpc.Metadata(), { deadline: Date.now() + timeoutMs }, (err, res) => {
      client.close();
      if (err)
        reject(
          new Error(
            `Health check of ${address}${service ? ` (service ${service})` : ''} failed: ${grpc.status[err.code] ?? err.code} ${err.details}`,
          ),
        );
      else
        resolve(
          typeof res?.status === 'number'
            ? (STATUS_NAMES[res.status] ?? String(res.status))
            : String(res?.status ?? 'UNKNOWN'),
        );
    });
  });
}
