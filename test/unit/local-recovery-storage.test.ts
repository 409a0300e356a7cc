import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  existsSync,
  mkdirSync,
  readdirSync,
  rmSync,
  symlinkSync,
  truncateSync,
  writeFileSync,
} from 'node:fs';
import path from 'node:path';
import {
  FileCheckpointStorage,
  fileStorageUri,
  writeChunks,
  type Logger,
} from '../../packages/core/src/index.js';
import { LocalRecoveryStorage } from '../../packages/taskmanager/src/state/local-recovery-storage.js';
import { tempDir } from '../helpers/cli.js';

function setUp(): { remoteDir: string; local: LocalRecoveryStorage; logs: string[] } {
  const work = tempDir('weir-local-recovery-');
  const remoteDir = path.join(work, 'remote');
  const logs: string[] = [];
  const log = {
    info: (_: unknown, m: string) => logs.push(`info: ${m}`),
    warn: (_: unknown, m: string) => logs.push(`warn: ${m}`),
  } as unknown as Logger;
  const local = new LocalRecoveryStorage(
    new FileCheckpointStorage(fileStorageUri(remoteDir)),
    path.join(work, 'local'),
    log,
  );
  return { remoteDir, local, logs };
}

const data = Buffer.from('state bytes '.repeat(1000));

describe('LocalRecoveryStorage', () => {
  test('a written file is read back from the local copy, without touching remote storage', async () => {
    const { remoteDir, local, logs } = setUp();
    const h = await local.write('job/chk-3/op/0-a', data);
    // the remote file is gone: only the local copy can answer
    rmSync(path.join(remoteDir, 'job/chk-3/op/0-a'));
    assert.deepEqual(await local.read(h.path, h.sha256), data);
    local.logRestore('Count (1/1) checkpoint 3');
    assert.match(logs.at(-1)!, /restored from local copies \(1 files, 0\.0 MB\)/);
  });

  test('a truncated local copy: read from remote storage, say so, and drop the copy', async () => {
    const { local, logs } = setUp();
    const h = await local.write('job/chk-3/op/0-a', data);
    const copy = path.join(local.dir, 'job/chk-3/op/0-a');
    truncateSync(copy, 100);
    assert.deepEqual(await local.read(h.path, h.sha256), data);
    assert.ok(
      logs.some((l) =>
        /warn: local recovery: the local copy .* is corrupt \(checksum mismatch, 100 bytes\); reading job\/chk-3\/op\/0-a from remote storage/.test(
          l,
        ),
      ),
      logs.join('\n'),
    );
    assert.equal(existsSync(copy), false, 'the corrupt copy is removed');
    local.logRestore('Count (1/1) checkpoint 3');
    assert.match(
      logs.at(-1)!,
      /0 files .* from local copies and 1 files .* from remote storage \(1 local copies unusable/,
    );
  });

  test('an unreadable local copy (a directory in its place): remote storage, with the reason', async () => {
    const { local, logs } = setUp();
    const h = await local.write('job/chk-3/op/0-a', data);
    const copy = path.join(local.dir, 'job/chk-3/op/0-a');
    rmSync(copy);
    mkdirSync(copy);
    assert.deepEqual(await local.read(h.path, h.sha256), data);
    assert.ok(
      logs.some((l) => /the local copy .* cannot be read \(EISDIR/.test(l)),
      logs.join('\n'),
    );
  });

  test('a full local disk: the checkpoint write succeeds remotely, the warning names the setting', async () => {
    const { remoteDir, local, logs } = setUp();
    const copy = path.join(local.dir, 'job/chk-4/op/0-b');
    mkdirSync(path.dirname(copy), { recursive: true });
    symlinkSync('/dev/full', copy); // every write to it fails with ENOSPC
    const h = await local.write('job/chk-4/op/0-b', data);
    assert.ok(existsSync(path.join(remoteDir, 'job/chk-4/op/0-b')), 'the remote write happened');
    assert.ok(
      logs.some((l) => /cannot keep a local copy .*ENOSPC.*taskmanager\.state\.local\.root-dirs/.test(l)),
      logs.join('\n'),
    );
    assert.deepEqual(await local.read(h.path, h.sha256), data);
    local.logRestore('x');
    assert.match(logs.at(-1)!, /0 files .* from local copies and 1 files/);
  });

  test('a streamed write (a heap snapshot) keeps its local copy on the way; a full local disk only drops the copy', async () => {
    const { remoteDir, local, logs } = setUp();
    async function* chunks(): AsyncGenerator<Uint8Array> {
      for (let i = 0; i < 40; i++) {
        await new Promise((r) => setImmediate(r));
        yield data.subarray(i * 300, (i + 1) * 300);
      }
    }
    const whole = data.subarray(0, 40 * 300);
    // the remote storage is written as a stream, not given the gathered file
    const calls: string[] = [];
    const remote = (local as unknown as { remote: FileCheckpointStorage }).remote;
    const { write, writeStream } = remote;
    remote.write = (p, d) => (calls.push('write'), write.call(remote, p, d));
    remote.writeStream = (p, c) => (calls.push('writeStream'), writeStream.call(remote, p, c));
    const h = await writeChunks(local, 'job/chk-6/op/0-d', chunks());
    assert.deepEqual(calls, ['writeStream']);
    assert.equal(h.size, whole.length);
    rmSync(path.join(remoteDir, 'job/chk-6/op/0-d'));
    assert.deepEqual(await local.read(h.path, h.sha256), whole, 'read from the local copy alone');

    const copy = path.join(local.dir, 'job/chk-7/op/0-e');
    mkdirSync(path.dirname(copy), { recursive: true });
    symlinkSync('/dev/full', copy); // every write to it fails with ENOSPC
    const h2 = await local.writeStream('job/chk-7/op/0-e', chunks());
    assert.ok(existsSync(path.join(remoteDir, 'job/chk-7/op/0-e')), 'the remote write happened');
    assert.equal(existsSync(copy), false, 'the failed copy is removed');
    assert.ok(
      logs.some((l) => /cannot keep a local copy of checkpoint file job\/chk-7.*ENOSPC/.test(l)),
      logs.join('\n'),
    );
    assert.deepEqual(await local.read(h2.path, h2.sha256), whole);
  });

  test('an unwritable local directory (a file in its place): writes succeed, restores read remote storage', async () => {
    const { local, logs } = setUp();
    mkdirSync(path.dirname(local.dir), { recursive: true });
    writeFileSync(local.dir, 'not a directory');
    const h = await local.write('job/chk-5/op/0-c', data);
    assert.ok(logs.some((l) => /cannot keep a local copy/.test(l)));
    assert.deepEqual(await local.read(h.path, h.sha256), data);
  });

  test('a completed checkpoint drops the local copies of older checkpoints, keeping shared files', async () => {
    const { local } = setUp();
    await local.write('job/chk-1/op/0', data);
    await local.write('job/chk-2/op/0', data);
    await local.write('job/chk-3/op/0', data);
    await local.write('job/shared/1-op-0-x', data);
    await local.checkpointCompleted('job', 2);
    assert.deepEqual(readdirSync(path.join(local.dir, 'job')).sort(), ['chk-2', 'chk-3', 'shared']);
  });
});
