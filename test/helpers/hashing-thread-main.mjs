// One task thread's checkpoint write: a hashing stream of 2 MiB, digest posted to the parent
// (or the error). Started as a worker thread by background-sha256.test.ts, many at once. Plain
// JavaScript loading the built core (packages/core/dist, which `npm test` builds first), so a
// thread starts in milliseconds rather than registering tsx and loading TypeScript.
import { parentPort } from 'node:worker_threads';
import { BackgroundSha256 } from '../../packages/core/dist/storage/background-sha256.js';

const h = new BackgroundSha256();
h.update(Buffer.alloc(2 << 20, 1));
try {
  parentPort.postMessage(await h.digest());
} catch (e) {
  parentPort.postMessage(`failed: ${e.message}`);
}
