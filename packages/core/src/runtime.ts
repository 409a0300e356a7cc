/**
 * What a slot's worker thread needs of @weir/core: everything but gRPC (the TaskManager's main
 * thread owns every connection). A worker thread loads this in about 130 ms against 300 ms for
 * the whole package (@grpc/grpc-js and the .proto files parsed at load), which every job
 * deployment to a fresh worker, every blank worker and every TaskManager start pays per slot.
 */
export * from './address.js';
export * from './codec.js';
export * from './direct-encoding.js';
export * from './msgpack-extent.js';
export * from './job-bundle.js';
export * from './job-graph.js';
export * from './key-groups.js';
export * from './logger.js';
export * from './rpc/types.js';
export * from './rpc/request-validation.js';
export * from './storage/index.js';
export * from './checkpoint/index.js';
export * from './json-payload.js';
export * from './durable-fs.js';
export * from './config.js';
export * from './security.js';
export * from './secrets.js';
export * from './metrics/process-metrics.js';
export * from './metrics/task-rates.js';
