// A job whose source has a split enumerator runs that enumerator on the JobManager, which plans
// the job's bundle for it in a directory of its own; that directory goes when the JobManager
// stops on SIGTERM.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import type { ChildProcess } from 'node:child_process';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ROOT, freePort, startWeirProcess, tempDir, until, weir } from '../helpers/cli.js';

/** The records of the committed part files under `dir`. */
function committed(dir: string): number[] {
  const out: number[] = [];
  for (const e of readdirSync(dir, { recursive: true, withFileTypes: true })) {
    if (!e.isFile() || !e.name.startsWith('part-')) continue;
    for (const l of readFileSync(path.join(e.parentPath, e.name), 'utf8').split('\n'))
      if (l !== '') out.push(Number(l));
  }
  return out.sort((a, b) => a - b);
}

describe('a split enumerator on the JobManager', () => {
  const dir = tempDir();
  const children: ChildProcess[] = [];
  after(() => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  });

  test('hands out every split once; the planned bundle is removed when the JobManager stops', async () => {
    const port = await freePort();
    const jm = await startWeirProcess(
      ['jobmanager', '--port', String(port), '--checkpoint-dir', path.join(dir, 'checkpoints')],
      path.join(dir, 'jobmanager.log'),
    );
    children.push(jm.child);
    const tm = await startWeirProcess(
      ['taskmanager', '--jobmanager', jm.address, '--slots', '2', '--work-dir', path.join(dir, 'tm')],
      path.join(dir, 'tm.log'),
    );
    children.push(tm.child);
    const out = path.join(dir, 'out');
    const r = await weir([
      'run',
      path.join(ROOT, 'test/jobs/enumerated-ranges.ts'),
      '--jobmanager',
      jm.address,
      '--',
      '7',
      '1000',
      out,
    ]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.deepEqual(
      committed(out),
      Array.from({ length: 7000 }, (_, i) => i),
      'every number of the 7 splits once',
    );
    const bundles = path.join(tmpdir(), `weir-jobmanager-${jm.child.pid}`);
    assert.ok(existsSync(bundles), `the JobManager planned the bundle in ${bundles}`);
    jm.child.kill('SIGTERM');
    await until('the JobManager exited', async () => (jm.child.exitCode !== null ? true : undefined), 20_000);
    assert.equal(existsSync(bundles), false, `${bundles} is removed on SIGTERM`);
    tm.child.kill('SIGTERM');
  });
});
