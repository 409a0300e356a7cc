import { loadSync } from '@grpc/proto-loader';
import * as grpc from '@grpc/grpc-js';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import type { ProtoGrpcType as ControlProto } from '../generated/control.js';
import type { ProtoGrpcType as DispatcherProto } from '../generated/dispatcher.js';
import type { ProtoGrpcType as DataProto } from '../generated/data.js';

/** proto/ at the repository root: dist/rpc -> src/.. -> packages/core -> root */
export const PROTO_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../../proto');

const LOADER_OPTIONS = {
  keepCase: false,
  longs: Number,
  enums: String,
  defaults: true,
  oneofs: true,
  includeDirs: [PROTO_DIR],
};

function load<T>(file: string): T {
  const def = loadSync(path.join(PROTO_DIR, file), LOADER_OPTIONS);
  return grpc.loadPackageDefinition(def) as unknown as T;
}

export const controlProto = load<ControlProto>('control.proto').weir;
export const dispatcherProto = load<DispatcherProto>('dispatcher.proto').weir;
export const dataProto = load<DataProto>('data.proto').weir;
