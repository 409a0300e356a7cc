export * from './runtime.js';
export * from './rpc/grpc-factory.js';
export * from './rpc/proto.js';
export * from './rpc/health.js';
export * from './metrics/http-endpoint.js';
