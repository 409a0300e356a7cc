import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { BackgroundSha256, SlabArena, sha256OfFile, sharedChunk } from '../../packages/core/src/index.js';
import { ValueStateDescriptor } from '../../packages/api/src/index.js';
import { HeapKeyedStateBackend } from '../../packages/taskmanager/src/state/heap-keyed-state-backend.js';
import { ROOT, tempDir } from '../helpers/cli.js';

const sha = (...bs: Uint8Array[]): string => {
  const h = createHash('sha256');
  for (const b of bs) h.update(b);
  return h.digest('hex');
};

/** `b` copied into shared memory */
const shared = (b: Uint8Array): Buffer => {
  const s = sharedChunk(b.byteLength);
  s.set(b);
  return s;
};

/**
 * Runs an ES module snippet in a plain node process of its own (cwd: the repository) and gives
 * its output. The snippet imports the built module (`npm test` builds first), as tsx would
 * take about a second to load TypeScript in the process and in each worker thread it starts.
 */
const inOwnProcess = (code: string, timeout: number): string =>
  execFileSync(process.execPath, ['--input-type=module', '-e', code], {
    cwd: ROOT,
    timeout,
    encoding: 'utf8',
  });

/** BackgroundSha256's module, built: the same code as the TypeScript imported above */
const BUILT = './packages/core/dist/storage/background-sha256.js';

describe('SHA-256 of checkpoint files on the hashing thread', () => {
  test('shared and ordinary chunks, views into larger buffers, several streams at once: the same digests as on the thread', async () => {
    const a = randomBytes(3 << 20);
    const b = randomBytes(70_000);
    const c = shared(randomBytes(2_000_001));
    const one = new BackgroundSha256();
    const two = new BackgroundSha256();
    one.update(a.subarray(5, 1_500_000));
    two.update(c);
    one.update(c.subarray(7, 1_000_000));
    two.update(b);
    one.update(new Uint8Array(0));
    one.update(b);
    assert.equal(await two.digest(), sha(c, b));
    assert.equal(one.size, 1_499_995 + 999_993 + 70_000);
    assert.equal(await one.digest(), sha(a.subarray(5, 1_500_000), c.subarray(7, 1_000_000), b));
    assert.equal(await new BackgroundSha256().digest(), sha());
  });

  test('ordinary chunks are copied into slabs reused once hashed: 4 streams of 48 MiB given faster than the thread hashes, in chunks of odd sizes, digest as on the thread', async () => {
    const source = randomBytes(8 << 20);
    const streams = Array.from({ length: 4 }, () => ({
      h: new BackgroundSha256(),
      given: [] as Array<[number, number]>,
    }));
    let seed = 7;
    const next = (n: number): number => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) % n) + 1;
    for (let round = 0; round < 3; round++) {
      let given = 0;
      while (given < 64 << 20) {
        for (const s of streams) {
          const len = next(3 << 20);
          const at = next(source.length - len) - 1;
          // a fresh ordinary buffer each time, as a file read gives them
          const chunk = Buffer.from(source.subarray(at, at + len));
          s.h.update(chunk);
          s.given.push([at, len]);
          given += len;
        }
      }
      // the thread gets behind, then catches up before the next round's copies
      if (round === 1) await new Promise((r) => setTimeout(r, 50));
    }
    const digests = await Promise.all(streams.map((s) => s.h.digest()));
    for (const [i, s] of streams.entries())
      assert.equal(
        digests[i],
        sha(...s.given.map(([at, len]) => source.subarray(at, at + len))),
        `stream ${i}`,
      );
  });

  test("a file's first bytes hashed on the thread (sha256OfFile); a file shorter than asked fails, naming both", async () => {
    const dir = tempDir('weir-sha-file-');
    const data = randomBytes((9 << 20) + 3);
    const file = path.join(dir, 'f');
    writeFileSync(file, data);
    assert.equal(await sha256OfFile(file, data.length), sha(data));
    assert.equal(await sha256OfFile(file, 1000), sha(data.subarray(0, 1000)));
    assert.equal(await sha256OfFile(file, 0), sha());
    await assert.rejects(sha256OfFile(file, data.length + 1), /is shorter than the 9437188 bytes recorded/);
    await assert.rejects(sha256OfFile(path.join(dir, 'missing'), 1), /ENOENT/);
    // the thread still hashes streams after a failed file
    const h = new BackgroundSha256();
    h.update(data);
    assert.equal(await h.digest(), sha(data));
  });

  test('part digests cover the bytes between them; the file digest all of them', async () => {
    const parts = [randomBytes(1_200_000), randomBytes(10), randomBytes(2_500_000)];
    const h = new BackgroundSha256(true);
    h.update(parts[0]!.subarray(0, 600_000));
    h.update(shared(parts[0]!.subarray(600_000)));
    const p0 = h.partDigest();
    h.update(parts[1]!);
    const p1 = h.partDigest();
    h.update(parts[2]!);
    assert.deepEqual(
      await Promise.all([p0, p1, h.partDigest()]),
      parts.map((p) => sha(p)),
    );
    assert.equal(await h.digest(), sha(...parts));
    await assert.rejects(h.digest(), /ended/);
    assert.throws(() => new BackgroundSha256().partDigest(), /parts/);
  });

  test('aborted and dropped streams leave nothing behind: later streams hash correctly and the process exits', () => {
    // in a process of its own: a stream left open would keep it alive (the test times out)
    const out = inOwnProcess(
      `import { BackgroundSha256 } from '${BUILT}';
         const a = new BackgroundSha256(); a.update(Buffer.alloc(3 << 20, 1)); a.abort();
         try { new BackgroundSha256().partDigest(); } catch {}
         new BackgroundSha256().update(Buffer.from('dropped before anything reached the worker'));
         const b = new BackgroundSha256(); b.update(Buffer.from('abc'));
         console.log(await b.digest());`,
      30_000,
    );
    assert.equal(out.trim(), sha(Buffer.from('abc')));
  });

  test('threads that start their hashing workers at once all hash: none loses the garbage collector to another', () => {
    // Each thread's hashing worker turns the process-wide --expose-gc on and off to take gc; two
    // starting together cleared it under each other ("gc is not defined" failed a savepoint of 4
    // subtasks in CI, 7-12 of 80 streams here). 2 rounds of 8 threads, as 8 slots start: at that
    // rate 16 streams all hashing shows the race gone (each thread loads the built module, plain
    // JavaScript, so the 8 of a round start their hashing workers closer together than tsx let them).
    const out = inOwnProcess(
      `import { Worker } from 'node:worker_threads';
         const main = new URL('./test/helpers/hashing-thread-main.mjs', 'file://' + process.cwd() + '/');
         const results = [];
         for (let round = 0; round < 2; round++)
           results.push(...(await Promise.all(Array.from({ length: 8 }, () => new Promise((resolve) => {
             // not this process's --input-type, which a worker started from a file refuses
             const w = new Worker(main, { execArgv: [] });
             w.once('message', (m) => { resolve(m); void w.terminate(); });
             w.once('error', (e) => resolve('failed: ' + e.message));
           })))));
         console.log(JSON.stringify(results));`,
      120_000,
    );
    const results = JSON.parse(out) as string[];
    const expected = sha(Buffer.alloc(2 << 20, 1));
    assert.equal(results.length, 16);
    assert.deepEqual(
      results.filter((r) => r !== expected),
      [],
    );
  });

  test('hashed bytes do not stay in memory: 2 GiB through one stream grow the resident set by far less', () => {
    // in a process of its own, for a clean resident set; the producer waits for a part digest
    // every 16 MiB, as a checkpoint's writes pace it. The hashing thread freed the chunks only
    // when its garbage collector ran, which it hardly did: 365 MiB of growth per GiB before.
    const out = inOwnProcess(
      `import { BackgroundSha256, sharedChunk } from '${BUILT}';
         const h = new BackgroundSha256(true);
         const start = process.memoryUsage().rss;
         let peak = 0;
         for (let i = 0; i < 32768; i++) {
           const c = i % 2 ? sharedChunk(65536) : Buffer.allocUnsafe(65536);
           c[0] = i;
           h.update(c);
           if (i % 256 === 255) {
             await h.partDigest();
             peak = Math.max(peak, process.memoryUsage().rss - start);
           }
         }
         await h.digest();
         console.log(peak);`,
      60_000,
    );
    const growth = Number(out.trim()) / 2 ** 20;
    assert.ok(growth < 256, `resident set grew by ${growth.toFixed(0)} MiB while 2 GiB were hashed`);
  });

  test("a heap snapshot's chunks are in shared memory: the hashing thread reads them without a copy", async () => {
    const b = new HeapKeyedStateBackend();
    const s = b.getState(new ValueStateDescriptor<string>('v'));
    for (let k = 0; k < 5000; k++) {
      b.setCurrentKey(k);
      s.update('x'.repeat(k % 300));
    }
    let parts = 0;
    for await (const batch of b.snapshot(128).batches!().batches)
      for (const p of batch.parts) {
        parts++;
        assert.ok(p.buffer instanceof SharedArrayBuffer);
      }
    assert.ok(parts >= 128);
  });

  test('slab arenas: chunks never overlap; released slabs go to the next arena, unreleased and non-recycling ones never do', () => {
    const a = new SlabArena();
    const cs = Array.from({ length: 40 }, (_, i) => a.chunk(64 * 1024 + (i % 3)));
    for (const c of cs) assert.equal(c.byteOffset % 8, 0);
    // no two chunks of one arena share a byte
    const spans = cs.map((c) => [c.buffer, c.byteOffset, c.byteOffset + c.byteLength] as const);
    for (let i = 0; i < spans.length; i++)
      for (let j = i + 1; j < spans.length; j++)
        if (spans[i]![0] === spans[j]![0])
          assert.ok(
            spans[i]![2] <= spans[j]![1] || spans[j]![2] <= spans[i]![1],
            `chunks ${i} and ${j} overlap`,
          );
    const slabsOfA = new Set(cs.map((c) => c.buffer));
    assert.ok(slabsOfA.size >= 3);
    // an arena not released keeps its slabs from others
    const b = new SlabArena();
    assert.ok(!slabsOfA.has(b.chunk(1000).buffer));
    a.release();
    const c = new SlabArena();
    const reused = new Set(Array.from({ length: 40 }, () => c.chunk(64 * 1024).buffer));
    assert.ok(
      [...reused].every((s) => slabsOfA.has(s)),
      "the next arena's chunks come from the released slabs",
    );
    // a chunk larger than a quarter slab has memory of its own, never recycled
    const big = c.chunk(512 * 1024);
    assert.ok(!slabsOfA.has(big.buffer));
    assert.equal(big.buffer.byteLength, 512 * 1024);
    // an arena that does not recycle (sharedChunk's) neither gives nor takes
    c.release();
    const d = new SlabArena(false);
    assert.ok(!reused.has(d.chunk(1000).buffer));
    d.release();
    assert.ok(!reused.has(sharedChunk(1000).buffer));
    // a release keeps its own slabs only: free ones it did not take are dropped, so what stays
    // allocated is about the last snapshot's size
    const e = new SlabArena();
    const eSlab = e.chunk(1000).buffer;
    assert.ok(reused.has(eSlab), 'e takes one of the free slabs');
    e.release();
    // releasing again, or an arena that took no slab, leaves the free slabs as they are
    e.release();
    new SlabArena().release();
    const f = new SlabArena();
    assert.equal(f.chunk(1000).buffer, eSlab);
    const later = new Set(Array.from({ length: 8 }, () => f.chunk(256 * 1024).buffer));
    later.delete(eSlab);
    assert.ok(later.size >= 1);
    assert.ok(![...later].some((m) => reused.has(m)), 'the slabs e did not take were dropped');
  });
});
