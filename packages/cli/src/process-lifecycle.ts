import type { ReadyMessage } from './local-cluster.js';

/** Tells a parent that forked this process (LocalCluster) where it listens (gRPC, and REST or Prometheus when it serves them). */
export function readyToParent(address: string, http: { rest?: string; metrics?: string } = {}): void {
  if (process.send) process.send({ type: 'ready', address, ...http } satisfies ReadyMessage);
}

/** One place owns the process signals: the first SIGTERM or SIGINT stops cleanly, a second forces. */
export function onShutdown(stop: () => Promise<void>): void {
  let stopping = false;
  const handler = (signal: string): void => {
    if (stopping) process.exit(130);
    stopping = true;
    console.error(`${signal} received, shutting down`);
    stop().then(
      () => process.exit(0),
      (err) => {
        console.error(err);
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => handler('SIGTERM'));
  process.on('SIGINT', () => handler('SIGINT'));
  process.on('disconnect', () => handler('parent gone'));
}
