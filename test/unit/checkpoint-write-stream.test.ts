import { after, before, describe, test } from 'node:test';
import type { S3Client } from '@aws-sdk/client-s3';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { readdirSync } from 'node:fs';
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import path from 'node:path';
import {
  FileCheckpointStorage,
  S3CheckpointStorage,
  StorageError,
  decodeRecords,
  keyGroupRanges,
  type CheckpointStorage,
} from '../../packages/core/src/index.js';
import { ValueStateDescriptor } from '../../packages/api/src/index.js';
import { HeapKeyedStateBackend } from '../../packages/taskmanager/src/state/heap-keyed-state-backend.js';
import { writeKeyedSnapshot } from '../../packages/taskmanager/src/state/keyed-snapshot-writer.js';
import type { KeyedStateBatches } from '../../packages/taskmanager/src/state/keyed-state-backend.js';
import { tempDir } from '../helpers/cli.js';
import { RecordingS3Proxy, TestS3Server, type RecordedRequest } from '../helpers/s3.js';

/** `n` chunks of random sizes up to `max` bytes, and their concatenation. */
function chunks(n: number, max: number): { parts: Buffer[]; all: Buffer } {
  const parts = Array.from({ length: n }, (_, i) => randomBytes(1 + ((i * 7919) % max)));
  return { parts, all: Buffer.concat(parts) };
}

async function* produce(parts: Buffer[], failAfter?: number): AsyncGenerator<Uint8Array> {
  for (const [i, p] of parts.entries()) {
    if (i === failAfter) throw new Error('the snapshot failed');
    await new Promise((r) => setImmediate(r));
    yield p;
  }
}

const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

describe('streamed checkpoint writes', () => {
  const s3 = new TestS3Server();
  const storages: Array<[string, () => CheckpointStorage]> = [];
  const dir = tempDir('weir-stream-');
  before(async () => {
    await s3.start();
  });
  after(async () => {
    await s3.stop();
  });
  storages.push(['file', () => new FileCheckpointStorage(`file://${dir}`)]);
  storages.push([
    's3 (s3rver)',
    () =>
      new S3CheckpointStorage('s3://weir/stream', {
        endpoint: s3.env.WEIR_S3_ENDPOINT,
        region: 'us-east-1',
        forcePathStyle: true,
        credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
      }),
  ]);

  for (const [name, make] of storages) {
    test(`${name}: the file is the chunks in order, with their size and SHA-256; multipart past one part`, async () => {
      const storage = make();
      // ~20 MB: two 16 MiB parts on S3, many 1 MiB writes on file
      const { parts, all } = chunks(340, 120_000);
      const h = await storage.writeStream!('job/chk-1/op/0-a', produce(parts));
      assert.equal(h.size, all.length);
      assert.equal(h.sha256, sha(all));
      const back = await storage.read('job/chk-1/op/0-a', h.sha256);
      assert.ok(back.equals(all));
    });

    test(`${name}: thousands of small chunks (more than one system call's vector) arrive whole and in order`, async () => {
      const storage = make();
      const { parts, all } = chunks(5000, 300);
      const h = await storage.writeStream!('job/chk-3/op/0-c', produce(parts));
      assert.equal(h.size, all.length);
      assert.ok((await storage.read('job/chk-3/op/0-c', h.sha256)).equals(all));
    });

    test(`${name}: no chunks at all (or only empty ones) make an empty file`, async () => {
      const storage = make();
      const h = await storage.writeStream!('job/chk-8/op/0-h', produce([Buffer.alloc(0)]));
      assert.equal(h.size, 0);
      assert.equal(h.sha256, sha(Buffer.alloc(0)));
      assert.equal((await storage.read('job/chk-8/op/0-h', h.sha256)).length, 0);
    });

    test(`${name}: a producer that fails fails the write with its own error, and leaves nothing`, async () => {
      const storage = make();
      const { parts } = chunks(80, 120_000);
      await assert.rejects(storage.writeStream!('job/chk-2/op/0-b', produce(parts, 70)), (e: Error) => {
        assert.ok(!(e instanceof StorageError), `not a storage failure: ${e.message}`);
        assert.match(e.message, /the snapshot failed/);
        return true;
      });
      assert.equal(await storage.exists('job/chk-2/op/0-b'), false);
      if (name === 'file')
        assert.deepEqual(readdirSync(path.join(dir, 'job/chk-2/op')), [], 'no temporary file');
    });
  }

  test('s3 over plain HTTP: uploads carry a signed SHA-256 of the body (the server refuses damaged bytes) and no CRC32', async () => {
    const storage = storages.find(([n]) => n !== 'file')![1]() as S3CheckpointStorage;
    const { client } = await (storage as unknown as { connect(): Promise<{ client: S3Client }> }).connect();
    const seen: Array<Record<string, string>> = [];
    client.middlewareStack.add(
      (next, context) => (args) => {
        if (context.commandName === 'PutObjectCommand' || context.commandName === 'UploadPartCommand')
          seen.push({ ...(args.request as { headers: Record<string, string> }).headers });
        return next(args);
      },
      { step: 'finalizeRequest', priority: 'low', name: 'testHeaders' },
    );
    const { parts, all } = chunks(60, 120_000);
    const h = await storage.writeStream!('job/chk-5/op/0-e', produce(parts));
    assert.ok((await storage.read('job/chk-5/op/0-e', h.sha256)).equals(all));
    assert.ok(seen.length > 0);
    for (const headers of seen) {
      assert.match(headers['x-amz-content-sha256'] ?? '', /^[0-9a-f]{64}$/);
      assert.ok(
        !Object.keys(headers).some((k) => k.startsWith('x-amz-checksum-')),
        Object.keys(headers).join(),
      );
    }
  });

  test('s3 over plain HTTP: each request is signed with the SHA-256 of the bytes it sent, computed ahead; the SDK never gets a part gathered into one buffer', async () => {
    const proxy = await new RecordingS3Proxy(s3.port).start();
    try {
      const storage = new S3CheckpointStorage('s3://weir/signed', {
        endpoint: `http://127.0.0.1:${proxy.port}`,
        region: 'us-east-1',
        forcePathStyle: true,
        credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
      });
      const { client } = await (storage as unknown as { connect(): Promise<{ client: S3Client }> }).connect();
      const bodies: unknown[] = [];
      client.middlewareStack.add(
        (next, context) => (args) => {
          if (context.commandName === 'PutObjectCommand' || context.commandName === 'UploadPartCommand')
            bodies.push((args.request as { body: unknown }).body);
          return next(args);
        },
        { step: 'build', priority: 'low', name: 'testBodies' },
      );
      // two parts (16 MiB and the rest), then a file within one part (PutObject)
      const big = chunks(330, 120_000);
      const small = chunks(20, 50_000);
      const h1 = await storage.writeStream!('job/chk-6/op/0-f', produce(big.parts));
      const h2 = await storage.writeStream!('job/chk-6/op/1-f', produce(small.parts));
      assert.equal(h1.sha256, sha(big.all));
      assert.equal(h2.sha256, sha(small.all));
      assert.ok((await storage.read('job/chk-6/op/0-f', h1.sha256)).equals(big.all));
      const puts = proxy.requests.filter((r) => r.method === 'PUT' && r.url.includes('/signed/'));
      assert.equal(puts.length, 3, puts.map((r) => r.url).join(', '));
      assert.equal(
        puts.reduce((n, r) => n + r.bodyBytes!, 0),
        big.all.length + small.all.length,
      );
      for (const r of puts) assert.equal(r.headers['x-amz-content-sha256'], r.bodySha256, r.url);
      assert.equal(bodies.length, 3);
      for (const b of bodies)
        assert.ok(!ArrayBuffer.isView(b), 'the body is the chunks, not one buffer the SDK hashes');
    } finally {
      await proxy.stop();
    }
  });

  test('s3: a request that fails is sent again with all its bytes (the chunks are streamed anew for each attempt)', async () => {
    // a proxy that answers the first PutObject and the first UploadPart with a 500 (the SDK retries those)
    const failed = new Set<string>();
    const server = http.createServer((req, res) => {
      const kind = /[?&]partNumber=/.test(req.url ?? '') ? 'part' : req.method === 'PUT' ? 'put' : '';
      if (kind && !failed.has(kind)) {
        failed.add(kind);
        req.resume();
        req.on('end', () => {
          res.writeHead(500, { 'content-type': 'application/xml' });
          res.end(
            '<?xml version="1.0"?><Error><Code>InternalError</Code><Message>try again</Message></Error>',
          );
        });
        return;
      }
      const up = http.request(
        { host: '127.0.0.1', port: s3.port, method: req.method, path: req.url, headers: req.headers },
        (r) => {
          res.writeHead(r.statusCode ?? 502, r.headers);
          r.pipe(res);
        },
      );
      up.on('error', () => res.destroy());
      req.pipe(up);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const storage = new S3CheckpointStorage('s3://weir/retried', {
        endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
        region: 'us-east-1',
        forcePathStyle: true,
        credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
      });
      const big = chunks(330, 120_000);
      const small = chunks(20, 50_000);
      const h1 = await storage.writeStream!('job/chk-7/op/0-g', produce(big.parts));
      const h2 = await storage.writeStream!('job/chk-7/op/1-g', produce(small.parts));
      assert.deepEqual([...failed].sort(), ['part', 'put']);
      assert.ok((await storage.read('job/chk-7/op/0-g', h1.sha256)).equals(big.all));
      assert.ok((await storage.read('job/chk-7/op/1-g', h2.sha256)).equals(small.all));
    } finally {
      await new Promise((r) => server.close(r));
    }
  });

  test('s3 over HTTPS: uploads are signed without hashing the body (UNSIGNED-PAYLOAD), nothing hashed per part on the task thread', async () => {
    const middleware = async (endpoint: string | undefined): Promise<string[]> => {
      const storage = new S3CheckpointStorage('s3://bucket/prefix', {
        region: 'us-east-1',
        ...(endpoint ? { endpoint } : {}),
        credentials: { accessKeyId: 'a', secretAccessKey: 'b' },
      });
      const { client } = await (storage as unknown as { connect(): Promise<{ client: S3Client }> }).connect();
      return client.middlewareStack.identify();
    };
    assert.ok(
      (await middleware('https://s3.example.invalid')).some((m) => m.startsWith('weirUnsignedPayload')),
    );
    assert.ok((await middleware(undefined)).some((m) => m.startsWith('weirUnsignedPayload')));
    assert.ok(!(await middleware('http://127.0.0.1:9000')).some((m) => m.startsWith('weirUnsignedPayload')));
  });

  test('a heap snapshot written by writeKeyedSnapshot restores every key; a stopped write ends at a key group', async () => {
    const storage = new FileCheckpointStorage(`file://${dir}`);
    const b = new HeapKeyedStateBackend();
    const s = b.getState(new ValueStateDescriptor<string>('v'));
    for (let k = 0; k < 20_000; k++) {
      b.setCurrentKey(k);
      s.update(`value-${k}`);
    }
    const m = b.snapshot(128);
    const out = await writeKeyedSnapshot(storage, 'job/chk-3/op/0-c', m.batches!());
    assert.ok(out);
    const data = await storage.read('job/chk-3/op/0-c', out.handle.sha256);
    const restored = new HeapKeyedStateBackend();
    for (const ranges of Object.values(out.index))
      for (const [off, len] of keyGroupRanges(ranges))
        restored.restoreEntries({ v: 'value' }, decodeRecords(data.subarray(off, off + len)));
    assert.equal(restored.numKeys(), 20_000);
    const rs = restored.getState(new ValueStateDescriptor<string>('v'));
    restored.setCurrentKey(12_345);
    assert.equal(rs.value(), 'value-12345');

    let batches = 0;
    const stopped = b.snapshot(128);
    await assert.rejects(
      writeKeyedSnapshot(storage, 'job/chk-4/op/0-d', stopped.batches!(), () =>
        ++batches > 3 ? 'checkpoint 4 aborted' : undefined,
      ),
      /checkpoint 4 aborted/,
    );
    assert.equal(b.openSnapshotViews(), 0);
    assert.equal(await storage.exists('job/chk-4/op/0-d'), false);
  });
});

describe('heap snapshot memory reused from one checkpoint to the next', () => {
  const dir = tempDir();

  /** batches of `kb` as they go by: the shared memory under their parts */
  const recording = (kb: KeyedStateBatches, seen: Set<ArrayBufferLike>): KeyedStateBatches => ({
    ...kb,
    batches: (async function* () {
      for await (const b of kb.batches) {
        for (const p of b.parts) seen.add(p.buffer);
        yield b;
      }
    })(),
  });

  const restore = async (
    storage: CheckpointStorage,
    file: string,
    out: { handle: { sha256?: string }; index: Record<number, number[]> },
  ) => {
    const data = await storage.read(file, out.handle.sha256);
    const r = new HeapKeyedStateBackend();
    for (const ranges of Object.values(out.index))
      for (const [off, len] of keyGroupRanges(ranges))
        r.restoreEntries({ v: 'value' }, decodeRecords(data.subarray(off, off + len)));
    return r;
  };

  test('a completed write gives its memory to the next snapshot, whose file still restores exactly; a stopped write does not', async () => {
    const storage = new FileCheckpointStorage(`file://${dir}`);
    const b = new HeapKeyedStateBackend();
    const s = b.getState(new ValueStateDescriptor<string>('v'));
    const fill = (tag: string): void => {
      for (let k = 0; k < 30_000; k++) {
        b.setCurrentKey(k);
        s.update(`${tag}-${k}`);
      }
    };
    /** the state filled with `tag`'s values, checkpointed to `file`: the handle and the memory under its chunks */
    const checkpoint = async (tag: string, file: string) => {
      fill(tag);
      const memory = new Set<ArrayBufferLike>();
      const out = await writeKeyedSnapshot(storage, file, recording(b.snapshot(128).batches!(), memory));
      assert.ok(out);
      return { out, memory };
    };
    const { out: out1, memory: first } = await checkpoint('first', 'job/chk-1/op/0');
    const { out: out2, memory: second } = await checkpoint('second', 'job/chk-2/op/0');
    assert.ok(
      [...second].some((m) => first.has(m)),
      "the second snapshot's chunks are carved from the first one's released slabs",
    );
    const v = (r: HeapKeyedStateBackend, k: number): string | undefined => {
      r.setCurrentKey(k);
      return r.getState(new ValueStateDescriptor<string>('v')).value();
    };
    const r1 = await restore(storage, 'job/chk-1/op/0', out1);
    const r2 = await restore(storage, 'job/chk-2/op/0', out2);
    for (const k of [0, 1, 12_345, 29_999]) {
      assert.equal(v(r1, k), `first-${k}`);
      assert.equal(v(r2, k), `second-${k}`);
    }
    assert.equal(r2.numKeys(), 30_000);

    // a write that stops part-way keeps its memory from later snapshots (bytes may be in flight)
    fill('third');
    const stoppedMem = new Set<ArrayBufferLike>();
    let batches = 0;
    await assert.rejects(
      writeKeyedSnapshot(storage, 'job/chk-3/op/0', recording(b.snapshot(128).batches!(), stoppedMem), () =>
        ++batches > 40 ? 'checkpoint 3 aborted' : undefined,
      ),
      /checkpoint 3 aborted/,
    );
    const { out: out4, memory: fourth } = await checkpoint('third', 'job/chk-4/op/0');
    assert.ok(![...fourth].some((m) => stoppedMem.has(m)), 'nothing of the stopped write was reused');
    const r4 = await restore(storage, 'job/chk-4/op/0', out4);
    assert.equal(v(r4, 777), 'third-777');
    assert.equal(b.openSnapshotViews(), 0);
  });
});

describe('S3 write() of a whole buffer: the same uploads as writeStream', () => {
  const s3 = new TestS3Server();
  before(async () => {
    await s3.start();
  });
  after(async () => {
    await s3.stop();
  });
  const MiB = 1024 * 1024;
  const storageAt = (root: string, port: number, encryption = {}): S3CheckpointStorage => {
    const st = new S3CheckpointStorage(
      root,
      {
        endpoint: `http://127.0.0.1:${port}`,
        region: 'us-east-1',
        forcePathStyle: true,
        maxAttempts: 1,
        credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
      },
      encryption,
    );
    st.writePartSize = 5 * MiB;
    return st;
  };
  /** what each request was: put, create, part, complete, abort (or method and URL) */
  const kind = (r: RecordedRequest): string => {
    if (r.method === 'PUT') return /[?&]partNumber=/.test(r.url) ? 'part' : 'put';
    if (r.method === 'POST') return /[?&]uploads(=|&|$)/.test(r.url) ? 'create' : 'complete';
    if (r.method === 'DELETE' && /[?&]uploadId=/.test(r.url)) return 'abort';
    return `${r.method} ${r.url}`;
  };
  const uploadId = (r: RecordedRequest): string | null =>
    new URL(r.url, 'http://x').searchParams.get('uploadId');

  test('larger than a part: a multipart upload of the buffer; smaller: one PutObject; both read back with their SHA-256 and encrypted', async () => {
    const proxy = await new RecordingS3Proxy(s3.port).start();
    try {
      const storage = storageAt('s3://weir/whole', proxy.port, { ServerSideEncryption: 'AES256' });
      const cases: Array<[string, number, string[]]> = [
        ['big', 11 * MiB + 12_345, ['create', 'part', 'part', 'part', 'complete']],
        ['exact', 10 * MiB, ['create', 'part', 'part', 'complete']],
        ['small', 100_000, ['put']],
        ['empty', 0, ['put']],
      ];
      for (const [name, bytes, requests] of cases) {
        const data = randomBytes(bytes);
        const from = proxy.requests.length;
        const h = await storage.write(`job/chk-1/op/${name}`, data);
        assert.deepEqual(h, { path: `job/chk-1/op/${name}`, size: bytes, sha256: sha(data) }, name);
        const sent = proxy.requests.slice(from);
        assert.deepEqual(sent.map(kind).sort(), [...requests].sort(), name);
        for (const w of sent.filter((r) => ['put', 'create'].includes(kind(r))))
          assert.equal(w.headers['x-amz-server-side-encryption'], 'AES256', `${name}: ${w.method} ${w.url}`);
        // parts in flight at once arrive in any order
        const partBytes = sent
          .filter((r) => kind(r) === 'part')
          .map((r) => [Number(new URL(r.url, 'http://x').searchParams.get('partNumber')), r.bodyBytes])
          .sort(([a], [b]) => a! - b!)
          .map(([, n]) => n);
        for (const n of partBytes.slice(0, -1)) assert.equal(n, 5 * MiB, name);
        if (partBytes.length)
          assert.equal(
            partBytes.reduce((x, y) => x! + y!, 0),
            bytes,
            name,
          );
        assert.ok((await storage.read(`job/chk-1/op/${name}`, h.sha256)).equals(data), name);
      }
    } finally {
      await proxy.stop();
    }
  });

  test('a buffer of 12 MiB (one part: a 1M-key heap snapshot) goes to the socket in writes of at most 256 KiB, not in one', async () => {
    // every socket write of the process during the upload (the request's head, then its body)
    const writes: number[] = [];
    const original = net.Socket.prototype.write;
    net.Socket.prototype.write = function (this: net.Socket, chunk: unknown, ...rest: unknown[]) {
      if (chunk instanceof Uint8Array) writes.push(chunk.byteLength);
      return (original as (...a: unknown[]) => boolean).call(this, chunk, ...rest);
    } as typeof original;
    try {
      const storage = storageAt('s3://weir/socket-writes', s3.port);
      storage.writePartSize = 16 * MiB;
      const data = randomBytes(12 * MiB);
      const h = await storage.write('job/chk-1/op/0', data);
      assert.equal(h.size, data.byteLength);
      const body = writes.filter((n) => n >= 1024);
      assert.ok(
        body.reduce((a, b) => a + b, 0) >= data.byteLength,
        `the body went through the socket (${writes.length} writes)`,
      );
      assert.ok(Math.max(...writes) <= 256 * 1024, `largest socket write ${Math.max(...writes)} bytes`);
      assert.ok((await storage.read('job/chk-1/op/0', h.sha256)).equals(data));
    } finally {
      net.Socket.prototype.write = original;
    }
  });

  test('a bucket that does not exist: the write fails naming the object and NoSuchBucket', async () => {
    const storage = storageAt('s3://no-such-bucket/ckpts', s3.port);
    for (const bytes of [1000, 6 * MiB])
      await assert.rejects(storage.write('job/chk-1/_metadata', randomBytes(bytes)), (e: Error) => {
        assert.ok(e instanceof StorageError, e.message);
        assert.equal(e.reason, 'UNAVAILABLE');
        assert.match(
          e.message,
          /^S3 upload to s3:\/\/no-such-bucket\/ckpts\/job\/chk-1\/_metadata failed: NoSuchBucket: /,
        );
        return true;
      });
  });

  test('a part refused (access denied) fails the write with S3’s answer and aborts the multipart upload', async () => {
    // s3rver implements neither ListMultipartUploads nor AbortMultipartUpload, so the test checks
    // the requests sent: the abort names the upload the parts went to, and nothing completes it
    let parts = 0;
    const proxy = await new RecordingS3Proxy(s3.port, (r) =>
      kind(r) === 'part' && ++parts === 2
        ? { status: 403, code: 'AccessDenied', message: 'Access Denied' }
        : undefined,
    ).start();
    try {
      const storage = storageAt('s3://weir/denied', proxy.port);
      await assert.rejects(storage.write('job/chk-2/op/0', randomBytes(16 * MiB)), (e: Error) => {
        assert.ok(e instanceof StorageError, e.message);
        assert.match(
          e.message,
          /^S3 upload to s3:\/\/weir\/denied\/job\/chk-2\/op\/0 failed: AccessDenied: /,
        );
        return true;
      });
      const sent = proxy.requests.map(kind);
      assert.ok(!sent.includes('complete'), sent.join(' '));
      const aborts = proxy.requests.filter((r) => kind(r) === 'abort');
      assert.equal(aborts.length, 1, sent.join(' '));
      assert.match(aborts[0]!.url, /^\/weir\/denied\/job\/chk-2\/op\/0\?/);
      const ids = new Set(proxy.requests.filter((r) => kind(r) === 'part').map(uploadId));
      assert.deepEqual([...ids], [uploadId(aborts[0]!)]);
      assert.equal(await storageAt('s3://weir/denied', s3.port).exists('job/chk-2/op/0'), false);
    } finally {
      await proxy.stop();
    }
  });
});
