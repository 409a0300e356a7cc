import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/*
 * Temporary directories of tests (clusters, S3, NATS and PostgreSQL servers, state). A test file
 * runs in its own process; when that process exits after every test passed, its directories go
 * (a cluster test leaves hundreds of MB of checkpoints and RocksDB files, and thousands of runs
 * filled the disk). After a failure they stay for inspection and their paths are printed;
 * WEIR_KEEP_TEST_DIRS=1 keeps them always.
 */
const created: string[] = [];

function removeOnExit(code: number): void {
  if (created.length === 0) return;
  if (code !== 0 || process.env.WEIR_KEEP_TEST_DIRS === '1') {
    if (code !== 0)
      process.stderr.write(`test directories kept for inspection:\n  ${created.join('\n  ')}\n`);
    return;
  }
  for (const dir of created) {
    try {
      rmSync(dir, { recursive: true, force: true, maxRetries: 2 });
    } catch {
      // a process the test left running may still write into it; the rest still goes
    }
  }
}

let hooked = false;

/** A new directory under the OS temp directory, removed when the test process exits cleanly. */
export function tempDir(prefix = 'weir-test-'): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), prefix));
  created.push(dir);
  if (!hooked) {
    hooked = true;
    process.on('exit', removeOnExit);
  }
  return dir;
}
