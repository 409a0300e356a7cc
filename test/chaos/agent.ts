// Runs in the client's network namespace and answers the chaos runner's questions to the
// JobManager over IPC (the runner itself lives outside the namespaces and cannot reach them).
// Message { id, op: 'status' | 'checkpoints', jobId } -> { id, value } or { id, error }.
import { ClusterClient } from '../../packages/client/src/cluster-client.js';

const address = process.argv[2]!;
let client: ClusterClient | undefined;

async function call(op: string, jobId: string): Promise<unknown> {
  try {
    client ??= await ClusterClient.connect(address, 2_000);
    return op === 'status' ? await client.status(jobId) : await client.checkpoints(jobId);
  } catch (e) {
    // a restarted JobManager: a new channel next time
    client?.close();
    client = undefined;
    throw e;
  }
}

process.on('message', (m: { id: number; op: string; jobId: string }) => {
  call(m.op, m.jobId).then(
    (value) => process.send?.({ id: m.id, value }),
    (e: Error) => process.send?.({ id: m.id, error: e.message }),
  );
});
process.on('disconnect', () => process.exit(0));
process.send?.({ ready: true });
