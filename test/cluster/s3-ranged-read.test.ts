import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { S3CheckpointStorage, sha256 } from '../../packages/core/src/index.js';
import { RecordingS3Proxy, TestS3Server } from '../helpers/s3.js';

describe('S3 reads of large files: parallel ranged GETs', () => {
  let s3: TestS3Server;
  let proxy: RecordingS3Proxy;
  let storage: S3CheckpointStorage;

  before(async () => {
    s3 = await new TestS3Server().start();
    proxy = await new RecordingS3Proxy(s3.port).start();
    storage = new S3CheckpointStorage('s3://weir/ranged', {
      endpoint: `http://127.0.0.1:${proxy.port}`,
      region: 'us-east-1',
      forcePathStyle: true,
      credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
    });
    storage.readPartSize = 1024 * 1024;
    storage.readConcurrency = 3;
  });
  after(async () => {
    await proxy?.stop();
    await s3?.stop();
  });

  const gets = (): string[] =>
    proxy.requests
      .filter((r) => r.method === 'GET' && r.url.includes('/ranged/'))
      .map((r) => String(r.headers.range));

  test('a file of 5.5 parts comes back whole and verified, in 6 ranges covering it once', async () => {
    const data = randomBytes(5.5 * 1024 * 1024);
    const h = await storage.write('job/shared/big', data);
    proxy.requests.length = 0;
    const back = await storage.read('job/shared/big', h.sha256);
    assert.equal(sha256(back), sha256(data));
    const ranges = gets();
    assert.equal(ranges.length, 6, ranges.join(', '));
    const covered = ranges
      .map((r) => /bytes=(\d+)-(\d+)/.exec(r)!.slice(1).map(Number) as [number, number])
      .sort((a, b) => a[0] - b[0]);
    let at = 0;
    for (const [from, to] of covered) {
      assert.equal(from, at, 'ranges follow each other without gap or overlap');
      at = to + 1;
    }
    assert.ok(at >= data.length);
  });

  test('a file smaller than a part is one GET', async () => {
    const data = randomBytes(1000);
    const h = await storage.write('job/chk-1/small', data);
    proxy.requests.length = 0;
    assert.deepEqual(await storage.read('job/chk-1/small', h.sha256), data);
    assert.equal(gets().length, 1);
  });

  test('a file of exactly one part', async () => {
    const data = randomBytes(1024 * 1024);
    const h = await storage.write('job/chk-1/one-part', data);
    proxy.requests.length = 0;
    assert.deepEqual(await storage.read('job/chk-1/one-part', h.sha256), data);
    assert.equal(gets().length, 1);
  });

  test('an empty file (straight to the server: it answers a range of nothing with a body that never comes)', async () => {
    const direct = new S3CheckpointStorage('s3://weir/ranged', {
      endpoint: `http://127.0.0.1:${s3.port}`,
      region: 'us-east-1',
      forcePathStyle: true,
      credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
    });
    const h = await direct.write('job/chk-1/empty', Buffer.alloc(0));
    assert.equal((await direct.read('job/chk-1/empty', h.sha256)).length, 0);
  });
});
