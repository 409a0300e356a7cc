import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import {
  FileCheckpointStorage,
  S3CheckpointStorage,
  type CheckpointStorage,
  type StorageError,
  childLocation,
  createCheckpointStorage,
  describeLocation,
  fileStorageUri,
  fsyncDirectory,
  isCheckpointDamaged,
  isWithinLocation,
  parseClusterConfig,
  parseStorageLocation,
  resolveConfig,
  resolveHandlePath,
  s3Encryption,
  storageFailureReason,
  storageUri,
  toStorageUri,
  writeLocalFile,
  type StorageLocation,
} from '../../packages/core/src/index.js';
import { RestorePlan } from '../../packages/jobmanager/src/restore.js';
import { StoragePathPolicy } from '../../packages/jobmanager/src/storage-paths.js';
import { ROOT, tempDir } from '../helpers/cli.js';

const file = (p: string): StorageLocation => ({ scheme: 'file', path: p });
const s3 = (bucket: string, prefix: string): StorageLocation => ({ scheme: 's3', bucket, prefix });

/** Runs `fn` expecting a StorageError with `reason` whose message matches `message`. */
async function rejectsWith(
  fn: () => unknown,
  reason: StorageError['reason'],
  message: RegExp,
): Promise<void> {
  await assert.rejects(
    async () => fn(),
    (err: unknown) => {
      // by shape: the JobManager's modules load the built @weir/core, a second copy of the class
      assert.equal(storageFailureReason(err), reason, String(err));
      assert.match((err as Error).message, message);
      return true;
    },
  );
}

describe('storage locations: one parser', () => {
  test('file paths are resolved against the base directory, without trailing slashes', () => {
    assert.deepEqual(parseStorageLocation('ckpts', { baseDir: '/srv/weir' }), file('/srv/weir/ckpts'));
    assert.deepEqual(parseStorageLocation('../shared/x/', { baseDir: '/srv/weir' }), file('/srv/shared/x'));
    assert.deepEqual(parseStorageLocation('/data//sp/./a/', { baseDir: '/x' }), file('/data/sp/a'));
    assert.deepEqual(parseStorageLocation('/', { baseDir: '/x' }), file('/'));
  });

  test('file:/// URIs: decoded, normalized, round-tripped', () => {
    assert.deepEqual(parseStorageLocation('file:///var/weir/ckpts/'), file('/var/weir/ckpts'));
    assert.deepEqual(parseStorageLocation('file://localhost/var/weir'), file('/var/weir'));
    assert.deepEqual(parseStorageLocation('FILE:///a%20b'), file('/a b'));
    assert.equal(storageUri(file('/a b/c%d')), 'file:///a%20b/c%25d');
    assert.deepEqual(parseStorageLocation(storageUri(file('/a b/c%d'))), file('/a b/c%d'));
    assert.equal(fileStorageUri('/tmp/x/'), 'file:///tmp/x');
    assert.equal(toStorageUri('sp', '/data'), 'file:///data/sp');
    assert.equal(toStorageUri('s3://b/p/'), 's3://b/p');
  });

  test('s3://bucket/prefix: prefix without leading, trailing or doubled slashes', () => {
    assert.deepEqual(parseStorageLocation('s3://weir/checkpoints'), s3('weir', 'checkpoints'));
    assert.deepEqual(parseStorageLocation('s3://weir/a//b/./c/'), s3('weir', 'a/b/c'));
    assert.deepEqual(parseStorageLocation('s3://weir'), s3('weir', ''));
    assert.deepEqual(parseStorageLocation('s3://weir/'), s3('weir', ''));
    assert.equal(storageUri(s3('weir', '')), 's3://weir');
    assert.equal(storageUri(s3('weir', 'a/b')), 's3://weir/a/b');
    assert.equal(describeLocation(s3('weir', 'a')), 's3://weir/a');
    assert.equal(describeLocation(file('/a b')), '/a b');
  });

  test('bad inputs name the input and say which forms are accepted', async () => {
    const bad: Array<[string, RegExp, { baseDir?: string }?]> = [
      ['', /Storage location '' is empty: give file:\/\/\/absolute\/path or s3:\/\/bucket\/prefix/],
      ['/plain/path', /'\/plain\/path' is not a storage URI: give file:\/\/\/absolute\/path or s3:/],
      ['ftp://host/x', /'ftp:\/\/host\/x' has an unsupported scheme 'ftp:\/\/': give file:\/\/\/absolute/],
      ['hdfs://nn/x', /unsupported scheme 'hdfs:\/\/': give a directory, file:\/\/\//, { baseDir: '/' }],
      ['s3://', /'s3:\/\/' names no bucket: give s3:\/\/bucket\/prefix/],
      ['s3:///prefix', /names no bucket/],
      ['file://host/x', /'file:\/\/host\/x' names a host or a relative path: give file:\/\/\/absolute\/path/],
      ['file://relative', /names a host or a relative path/],
      ['s3://b/a\0', /contains a NUL character/],
    ];
    for (const [input, message, opts] of bad)
      await rejectsWith(() => parseStorageLocation(input, opts), 'INVALID_LOCATION', message);
    await rejectsWith(
      () => parseStorageLocation('x', { what: 'Savepoint target' }),
      'INVALID_LOCATION',
      /^Savepoint target 'x' is not a storage URI/,
    );
  });

  test('the configuration checks storage URIs with the same parser', () => {
    assert.throws(
      () => parseClusterConfig('state.checkpoints.dir: /tmp/x', 'c.yaml'),
      /Invalid value for 'state.checkpoints.dir': "\/tmp\/x"; expected file:\/\/\/path or s3:\/\/bucket\/prefix/,
    );
    assert.throws(
      () => parseClusterConfig('state.savepoints.dir: s3:///sp', 'c.yaml'),
      /Invalid value for 'state.savepoints.dir': 's3:\/\/\/sp' names no bucket: give s3:\/\/bucket\/prefix/,
    );
    assert.throws(
      () => parseClusterConfig('high-availability.storageDir: file://nas/ha', 'c.yaml'),
      /'high-availability.storageDir': 'file:\/\/nas\/ha' names a host or a relative path/,
    );
    assert.equal(parseClusterConfig('state.checkpoints.dir: s3://b/c/', 'c.yaml').checkpointDir, 's3://b/c/');
  });

  test("'..' in a URI is refused; in a plain path it is resolved", async () => {
    for (const uri of ['s3://b/sp/../../other', 'file:///data/sp/../ckpt', 's3://b/a/%2E%2E/c'])
      await rejectsWith(() => parseStorageLocation(uri), 'INVALID_LOCATION', /has a '\.\.' segment/);
    assert.deepEqual(parseStorageLocation('/data/sp/../ckpt', { baseDir: '/' }), file('/data/ckpt'));
    await rejectsWith(
      () => childLocation(s3('b', 'x'), '../y'),
      'INVALID_LOCATION',
      /Path \.\.\/y escapes s3:\/\/b\/x/,
    );
    assert.deepEqual(childLocation(s3('b', ''), 'j/chk-1/'), s3('b', 'j/chk-1'));
    assert.deepEqual(childLocation(file('/d'), './j'), file('/d/j'));
  });

  test('within: whole segments, same bucket, same scheme', () => {
    assert.ok(isWithinLocation(file('/data/sp/x'), file('/data/sp')));
    assert.ok(isWithinLocation(file('/data/sp'), file('/data/sp')));
    assert.ok(!isWithinLocation(file('/data/spx'), file('/data/sp')));
    assert.ok(isWithinLocation(file('/anything'), file('/')));
    assert.ok(isWithinLocation(s3('b', 'sp/x'), s3('b', 'sp')));
    assert.ok(isWithinLocation(s3('b', 'sp/x'), s3('b', '')));
    assert.ok(!isWithinLocation(s3('b', 'spx'), s3('b', 'sp')));
    assert.ok(!isWithinLocation(s3('c', 'sp/x'), s3('b', 'sp')));
    assert.ok(!isWithinLocation(file('/b/sp'), s3('b', 'sp')));
  });

  test('relative handle paths (../shared/<file>) resolve in one place, and never above the top', async () => {
    assert.deepEqual(resolveHandlePath('s3://weir/ckpts/job/chk-3', '../shared/f'), {
      root: s3('weir', 'ckpts/job'),
      path: 'shared/f',
    });
    assert.deepEqual(resolveHandlePath('file:///var/ck/job/chk-3', '../shared/f'), {
      root: file('/var/ck/job'),
      path: 'shared/f',
    });
    assert.deepEqual(resolveHandlePath(file('/var/ck/job/chk-3'), 'op/0-abc'), {
      root: file('/var/ck/job/chk-3'),
      path: 'op/0-abc',
    });
    assert.deepEqual(resolveHandlePath('s3://weir/j/chk-3', '../../x'), { root: s3('weir', ''), path: 'x' });
    await rejectsWith(
      () => resolveHandlePath('s3://weir/j/chk-3', '../../../x'),
      'INVALID_LOCATION',
      /Checkpoint path \.\.\/\.\.\/\.\.\/x escapes s3:\/\/weir\/j\/chk-3/,
    );
    await rejectsWith(
      () => resolveHandlePath('file:///a', '../../x'),
      'INVALID_LOCATION',
      /escapes file:\/\/\/a/,
    );
  });

  test('the savepoint policy decides on parsed locations', () => {
    const p = new StoragePathPolicy({
      checkpointStorage: 's3://b/ckpt',
      savepointDir: 's3://b/sp/',
      restrict: true,
    });
    assert.equal(p.savepointTarget('nightly/'), 's3://b/sp/nightly');
    assert.equal(p.restorePath('s3://b/ckpt/j/chk-1/_metadata'), 's3://b/ckpt/j/chk-1/_metadata');
    assert.throws(() => p.savepointTarget('s3://b/ckpt/j'), /inside the checkpoint storage s3:\/\/b\/ckpt/);
    assert.throws(
      () => p.savepointTarget('s3://b/spx'),
      /outside the directories this cluster allows \(s3:\/\/b\/sp\)/,
    );
    assert.throws(
      () => p.savepointTarget('ftp://b/sp'),
      /Savepoint target 'ftp:\/\/b\/sp' has an unsupported scheme/,
    );
  });
});

describe('storage failures carry a reason', () => {
  test('file storage: missing is NOT_FOUND, a bad checksum CORRUPT; both are damage', async () => {
    const st = new FileCheckpointStorage(fileStorageUri(tempDir('weir-storage-')));
    const h = await st.write('j/chk-1/op/0', Buffer.from('state'));
    assert.equal((await st.read('j/chk-1/op/0', h.sha256)).toString(), 'state');
    await st.write('j/chk-1/op/0', Buffer.from('state'));
    assert.deepEqual(await st.list('j/chk-1/op'), ['0'], 'the durable write leaves no temporary file');
    assert.ok(await st.exists('j/chk-1'));
    assert.ok(!(await st.exists('j/chk-2')));
    await rejectsWith(
      () => st.read('j/chk-1/op/1'),
      'NOT_FOUND',
      /Cannot read checkpoint file .*op\/1: ENOENT/,
    );
    await rejectsWith(
      () => st.read('j/chk-1/op/0', '0'.repeat(64)),
      'CORRUPT',
      /Checksum mismatch in checkpoint file/,
    );
    await rejectsWith(() => st.read('../x'), 'INVALID_LOCATION', /escapes the storage root/);
    const err = await st.read('nope').catch((e: unknown) => e);
    assert.ok(isCheckpointDamaged(err));
    assert.equal(storageFailureReason(err), 'NOT_FOUND');
    assert.ok(isCheckpointDamaged('CORRUPT'));
    assert.ok(!isCheckpointDamaged('UNAVAILABLE'));
    assert.ok(!isCheckpointDamaged(''));
    assert.ok(
      !isCheckpointDamaged(new Error('ENOENT does not exist: Checksum mismatch')),
      'messages decide nothing',
    );
  });

  test('S3 that cannot be reached is UNAVAILABLE, not damage', async () => {
    const st = new S3CheckpointStorage('s3://weir/x', {
      endpoint: 'http://127.0.0.1:9',
      region: 'us-east-1',
      forcePathStyle: true,
      maxAttempts: 1,
      credentials: { accessKeyId: 'a', secretAccessKey: 'b' },
    });
    await rejectsWith(
      () => st.read('j/_metadata'),
      'UNAVAILABLE',
      /Cannot read checkpoint file s3:\/\/weir\/x\/j\/_metadata/,
    );
    await rejectsWith(() => st.exists('j'), 'UNAVAILABLE', /Cannot look at s3:\/\/weir\/x\/j/);
  });

  test('restore: a missing path, a directory without _metadata and unreadable metadata are damage, with the old messages', async () => {
    const dir = tempDir('weir-restore-');
    const graph = { maxParallelism: 128, vertices: [], edges: [] } as never;
    await rejectsWith(
      () => RestorePlan.load(path.join(dir, 'nope'), graph, false),
      'NOT_FOUND',
      /^Restore path does not exist: .*nope$/,
    );
    mkdirSync(path.join(dir, 'empty', 'op'), { recursive: true });
    writeFileSync(path.join(dir, 'empty', 'op', 'f'), 'x');
    await rejectsWith(
      () => RestorePlan.load(`${pathToFileURL(path.join(dir, 'empty')).href}/`, graph, false),
      'NOT_FOUND',
      /^No _metadata in .*empty: not a savepoint or completed checkpoint$/,
    );
    mkdirSync(path.join(dir, 'bad'));
    writeFileSync(path.join(dir, 'bad', '_metadata'), '{not json');
    await rejectsWith(
      () => RestorePlan.load(path.join(dir, 'bad', '_metadata'), graph, false),
      'CORRUPT',
      /^Corrupt checkpoint metadata .*bad\/_metadata: /,
    );
    writeFileSync(
      path.join(dir, 'bad', '_metadata'),
      JSON.stringify({ version: 1, jobId: 'j', checkpointId: 4, maxParallelism: 128, operators: {} }),
    );
    const plan = await RestorePlan.load(path.join(dir, 'bad'), graph, false);
    assert.equal(plan.metadataFile, path.join(dir, 'bad', '_metadata'));
    assert.equal(plan.storageRoot, pathToFileURL(path.join(dir, 'bad')).href);
    assert.equal(createCheckpointStorage(plan.storageRoot).root, plan.storageRoot);
  });
});

const exec = promisify(execFile);

/**
 * Imports the given modules in a fresh Node process (through tsx, as the tests do), uses a
 * storage location there, and returns the URLs of every module the process loaded, recorded by
 * a module loader hook.
 */
async function modulesLoadedBy(modules: string[], location: string): Promise<string[]> {
  const work = tempDir('weir-sdk-');
  const log = path.join(work, 'loaded.txt');
  writeFileSync(log, '');
  const hook = `import { appendFileSync } from 'node:fs';
export async function load(url, context, next) {
  appendFileSync(${JSON.stringify(log)}, url + '\\n');
  return next(url, context);
}`;
  const script = `
import { register } from 'node:module';
register('data:text/javascript,' + encodeURIComponent(${JSON.stringify(hook)}));
const mods = [];
for (const m of ${JSON.stringify(modules.map((m) => pathToFileURL(path.join(ROOT, m)).href))}) mods.push(await import(m));
// the process edge: the WEIR_S3_* environment below, read once into the S3 settings
mods[0].configureS3Storage(mods[0].resolveConfig({ env: process.env }).settings);
const storage = mods[0].createCheckpointStorage(${JSON.stringify(location)});
await storage.write('j/chk-1/_metadata', Buffer.from('{}')).catch((e) => console.log(e.reason));
await storage.read('j/chk-1/_metadata').catch((e) => console.log(e.reason));
`;
  await exec(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
    cwd: ROOT,
    env: { ...process.env, WEIR_S3_ENDPOINT: 'http://127.0.0.1:9', AWS_MAX_ATTEMPTS: '1' },
    timeout: 60_000,
  });
  return readFileSync(log, 'utf8').split('\n').filter(Boolean);
}

describe('checkpoint data at rest', () => {
  test('file storage writes owner-only files (0600) in owner-only directories (0700)', async () => {
    const root = tempDir('weir-modes-');
    const st = new FileCheckpointStorage(`file://${path.join(root, 'ckpt')}`);
    await st.write('job/chk-1/op/state-0', Buffer.from('state'));
    await st.write('job/chk-1/_metadata', Buffer.from('{}'));
    for (const f of ['job/chk-1/op/state-0', 'job/chk-1/_metadata'])
      assert.equal(statSync(path.join(root, 'ckpt', f)).mode & 0o777, 0o600, f);
    for (const d of ['job', 'job/chk-1', 'job/chk-1/op'])
      assert.equal(statSync(path.join(root, 'ckpt', d)).mode & 0o777, 0o700, d);
  });

  test("a local file's first bytes copied into file storage: owner-only, its checksum that of those bytes, nothing left by a file shorter than recorded; without copyFile the same bytes are streamed", async () => {
    const root = tempDir('weir-copy-');
    const src = path.join(root, 'db', '000012.log');
    mkdirSync(path.dirname(src), { recursive: true });
    const bytes = randomBytes(9 << 20);
    // 0644 as RocksDB makes them; a log appended to past its recorded size
    writeFileSync(src, bytes, { mode: 0o644 });
    const size = (9 << 20) - 1234;
    const st = new FileCheckpointStorage(`file://${path.join(root, 'ckpt')}`);
    const h = await writeLocalFile(st, 'job/shared/a-000012.log', src, size);
    const expected = createHash('sha256').update(bytes.subarray(0, size)).digest('hex');
    assert.deepEqual(h, { path: 'job/shared/a-000012.log', size, sha256: expected });
    const copied = path.join(root, 'ckpt', 'job/shared/a-000012.log');
    assert.equal(statSync(copied).mode & 0o777, 0o600);
    assert.ok((await st.read(h.path, h.sha256)).equals(bytes.subarray(0, size)));
    await assert.rejects(
      writeLocalFile(st, 'job/shared/b-000012.log', src, bytes.length + 1),
      /shorter \(9437184 bytes\) than the 9437185 bytes recorded/,
    );
    assert.deepEqual(await st.list('job/shared'), ['a-000012.log'], 'no partial or temporary file left');
    // storage that cannot take the file (a file where a directory must be): UNAVAILABLE, naming it
    await rejectsWith(
      () => writeLocalFile(st, 'job/shared/a-000012.log/b', src, size),
      'UNAVAILABLE',
      /Cannot write checkpoint file .*a-000012\.log\/b/,
    );
    // a storage without copyFile (S3's) gets the same bytes in chunks
    const streamed = new FileCheckpointStorage(`file://${path.join(root, 'streamed')}`);
    const plain: CheckpointStorage = {
      root: streamed.root,
      location: streamed.location,
      write: (p, d) => streamed.write(p, d),
      writeStream: (p, c) => streamed.writeStream(p, c),
      read: (p, s) => streamed.read(p, s),
      list: (d) => streamed.list(d),
      exists: (p) => streamed.exists(p),
      delete: (p) => streamed.delete(p),
      deleteDir: (d) => streamed.deleteDir(d),
    };
    assert.deepEqual(await writeLocalFile(plain, 'job/shared/a-000012.log', src, size), h);
    await assert.rejects(
      writeLocalFile(plain, 'job/shared/c', src, bytes.length + 1),
      /shorter than the 9437185 bytes/,
    );
  });

  test('directory fsyncs shared by concurrent writes (a group commit): 60 files at once all durable and whole; a failing fsync fails only its callers', async () => {
    const root = tempDir('weir-dirsync-');
    const st = new FileCheckpointStorage(`file://${root}`);
    const data = (i: number): Buffer => Buffer.alloc(1000 + i, i);
    await Promise.all(Array.from({ length: 60 }, (_, i) => st.write(`job/shared/f-${i}`, data(i))));
    const names = await st.list('job/shared');
    assert.equal(names.length, 60, names.join(' '));
    for (let i = 0; i < 60; i++) assert.ok((await st.read(`job/shared/f-${i}`)).equals(data(i)));
    // a directory that is not there: the running fsync and the one queued behind it both fail
    const gone = path.join(root, 'gone');
    const both = await Promise.allSettled([fsyncDirectory(gone), fsyncDirectory(gone), fsyncDirectory(gone)]);
    assert.deepEqual(
      both.map((r) => r.status),
      ['rejected', 'rejected', 'rejected'],
    );
    mkdirSync(gone);
    await fsyncDirectory(gone);
  });

  test('S3 server-side encryption settings: sse-s3, sse-kms with a key, and a key without sse-kms refused', () => {
    const sse = (env: Record<string, string>) => s3Encryption(resolveConfig({ env }).settings);
    assert.deepEqual(sse({}), {});
    assert.deepEqual(sse({ WEIR_S3_SSE_TYPE: 'sse-s3' }), { ServerSideEncryption: 'AES256' });
    assert.deepEqual(sse({ WEIR_S3_SSE_TYPE: 'sse-kms' }), { ServerSideEncryption: 'aws:kms' });
    assert.deepEqual(sse({ WEIR_S3_SSE_TYPE: 'sse-kms', WEIR_S3_SSE_KMS_KEY_ID: 'arn:aws:kms:k' }), {
      ServerSideEncryption: 'aws:kms',
      SSEKMSKeyId: 'arn:aws:kms:k',
    });
    assert.throws(
      () => sse({ WEIR_S3_SSE_KMS_KEY_ID: 'k' }),
      /s3\.sse\.kms-key-id is set but s3\.sse\.type is none/,
    );
    assert.throws(
      () => sse({ WEIR_S3_SSE_TYPE: 'aes' }),
      /WEIR_S3_SSE_TYPE.*expected none or sse-s3 or sse-kms/,
    );
  });
});

describe('the AWS SDK is loaded only for s3:// locations', () => {
  test('a process that imports core and the JobManager and writes to file:// never loads @aws-sdk', async () => {
    const loaded = await modulesLoadedBy(
      ['packages/core/src/index.ts', 'packages/jobmanager/src/index.ts'],
      fileStorageUri(path.join(tempDir('weir-file-'), 'ckpts')),
    );
    assert.ok(
      loaded.some((u) => u.includes('/packages/core/src/storage/s3-checkpoint-storage.ts')),
      'the S3 storage module itself was imported',
    );
    assert.ok(loaded.length > 50, `the hook recorded the process's modules (${loaded.length})`);
    const sdk = loaded.filter((u) => u.includes('@aws-sdk'));
    assert.deepEqual(sdk, [], 'no @aws-sdk module was loaded');
  });

  test('the same check sees the SDK once an s3:// location is used', async () => {
    const loaded = await modulesLoadedBy(['packages/core/src/index.ts'], 's3://weir/ckpts');
    assert.ok(
      loaded.some((u) => u.includes('@aws-sdk/client-s3')),
      'the check can see @aws-sdk being loaded',
    );
  });
});
