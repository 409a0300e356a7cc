import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { startWeirProcess, tempDir, until } from '../helpers/cli.js';

/** Lines of a process's JSON log that carry `msg`. */
function logLines(file: string, msg: string): Array<Record<string, unknown>> {
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l.includes(msg))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

describe('heartbeats both ways', () => {
  const children: ChildProcess[] = [];
  after(() => {
    for (const c of children) {
      c.kill('SIGCONT');
      c.kill('SIGKILL');
    }
  });

  test('a TaskManager whose JobManager goes silent (stream open, no heartbeats) gives up on it, then registers again', async () => {
    const dir = tempDir('weir-heartbeat-');
    const jmLog = path.join(dir, 'jobmanager.log');
    const tmLog = path.join(dir, 'taskmanager.log');
    const jm = await startWeirProcess(
      [
        'jobmanager',
        '--port',
        '0',
        '--checkpoint-dir',
        path.join(dir, 'checkpoints'),
        '--heartbeat-interval',
        '200',
        '--heartbeat-timeout',
        '1500',
      ],
      jmLog,
    );
    children.push(jm.child);
    const tm = await startWeirProcess(
      ['taskmanager', '--jobmanager', jm.address, '--slots', '1', '--work-dir', path.join(dir, 'tm')],
      tmLog,
    );
    children.push(tm.child);
    await until('registered', async () =>
      logLines(tmLog, 'registered at JobManager').length > 0 ? true : undefined,
    );
    // a frozen JobManager keeps its TCP connections open: only the missing heartbeats tell
    jm.child.kill('SIGSTOP');
    const stoppedAt = Date.now();
    const lost = await until(
      'the TaskManager gives up on the silent JobManager',
      async () => logLines(tmLog, 'lost the JobManager')[0],
      10_000,
    );
    const waited = Date.now() - stoppedAt;
    assert.match(String(lost.reason), /no heartbeat from the JobManager for \d+ s \(timeout 1\.5 s\)/);
    assert.ok(waited < 6_000, `noticed after ${waited} ms with a 1.5 s timeout`);
    jm.child.kill('SIGCONT');
    await until(
      'registered again once the JobManager answers',
      async () => (logLines(tmLog, 'registered at JobManager').length >= 2 ? true : undefined),
      20_000,
    );
  });
});
