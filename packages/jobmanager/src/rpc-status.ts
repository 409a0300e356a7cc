import * as grpc from '@grpc/grpc-js';

export function invalid(message: string): Partial<grpc.StatusObject> {
  return { code: grpc.status.INVALID_ARGUMENT, details: message };
}

export function notFound(message: string): Partial<grpc.StatusObject> {
  return { code: grpc.status.NOT_FOUND, details: message };
}

export function permissionDenied(message: string): Partial<grpc.StatusObject> {
  return { code: grpc.status.PERMISSION_DENIED, details: message };
}

export function failedPrecondition(message: string): Partial<grpc.StatusObject> {
  return { code: grpc.status.FAILED_PRECONDITION, details: message };
}
