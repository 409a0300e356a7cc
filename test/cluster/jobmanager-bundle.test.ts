// A job whose source has a split enumerator runs that enumerator on the JobManager, which plans
// the job's bundle for it in a directory of its own; that directory goes when the JobManager
// stops on SIGTERM, and the next JobManager removes it when the JobManager was killed.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, readdirSync } from 'node:fs';
import type { ChildProcess } from 'node:child_process';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ROOT, freePort, startWeirProcess, tempDir, until, weir } from '../helpers/cli.js';

/** The bundle directories of JobManager `pid` under `base`. */
function bundleDirs(base: string, pid: number): string[] {
  return readdirSync(base)
    .filter((n) => n.startsWith(`weir-jobmanager-${pid}-`))
    .map((n) => path.join(base, n));
}

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
    const [bundles] = bundleDirs(tmpdir(), jm.child.pid!);
    assert.ok(bundles && existsSync(bundles), 'the JobManager planned the bundle in the temporary directory');
    jm.child.kill('SIGTERM');
    await until('the JobManager exited', async () => (jm.child.exitCode !== null ? true : undefined), 20_000);
    assert.equal(existsSync(bundles), false, `${bundles} is removed on SIGTERM`);
    tm.child.kill('SIGTERM');
  });

  test('the directory of a JobManager killed with SIGKILL is removed by the next JobManager on the same working directory; a running one keeps its own', async () => {
    const work = path.join(dir, 'jm-work');
    /** a JobManager on `work` with a TaskManager, that has planned a job's bundle */
    const planned = async (
      name: string,
    ): Promise<{ jm: ChildProcess; tm: ChildProcess; bundles: string }> => {
      const jm = await startWeirProcess(
        [
          'jobmanager',
          '--port',
          '0',
          '--no-job-store',
          '--checkpoint-dir',
          path.join(dir, `${name}-checkpoints`),
          '-D',
          `process.jobmanager.working-dir=${work}`,
        ],
        path.join(dir, `${name}.log`),
      );
      children.push(jm.child);
      const tm = await startWeirProcess(
        [
          'taskmanager',
          '--jobmanager',
          jm.address,
          '--slots',
          '2',
          '--work-dir',
          path.join(dir, `${name}-tm`),
        ],
        path.join(dir, `${name}-tm.log`),
      );
      children.push(tm.child);
      const out = path.join(dir, `${name}-out`);
      const r = await weir([
        'run',
        path.join(ROOT, 'test/jobs/enumerated-ranges.ts'),
        '--jobmanager',
        jm.address,
        '--',
        '2',
        '10',
        out,
      ]);
      assert.equal(r.code, 0, r.stdout + r.stderr);
      const dirs = bundleDirs(work, jm.child.pid!);
      assert.equal(dirs.length, 1, `${name} planned the bundle under process.jobmanager.working-dir`);
      return { jm: jm.child, tm: tm.child, bundles: dirs[0]! };
    };
    const [running, killed] = await Promise.all([planned('running'), planned('killed')]);
    killed.jm.kill('SIGKILL');
    killed.tm.kill('SIGKILL');
    await until('the JobManager was killed', async () => (killed.jm.signalCode ? true : undefined), 20_000);
    // the directory name of a JobManager of an older version, without the random part
    const older = path.join(work, `weir-jobmanager-${killed.jm.pid}`);
    mkdirSync(path.join(older, 'bundles'), { recursive: true });
    assert.ok(existsSync(killed.bundles), 'SIGKILL left the directory behind');

    const next = await startWeirProcess(
      ['jobmanager', '--port', '0', '--no-job-store', '--work-dir', work],
      path.join(dir, 'next.log'),
    );
    children.push(next.child);
    await until(
      "the next JobManager removed the killed one's directories",
      async () => (!existsSync(killed.bundles) && !existsSync(older) ? true : undefined),
      20_000,
    );
    assert.ok(existsSync(running.bundles), 'the running JobManager keeps its directory');
    // the log line comes after the removals (a CI run read the log in between)
    await until(
      'the next JobManager logged the two removals',
      async () => (/"removed":2/.test(readFileSync(path.join(dir, 'next.log'), 'utf8')) ? true : undefined),
      20_000,
    );
    running.jm.kill('SIGTERM');
    running.tm.kill('SIGTERM');
    next.child.kill('SIGTERM');
  });
});
