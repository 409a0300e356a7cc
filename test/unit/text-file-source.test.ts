import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import {
  InputStatus,
  TextFileSource,
  type FileSourceSplit,
  type SourceReader,
  type SplitRequester,
  type TaskInfo,
} from '../../packages/api/src/index.js';
import { createLogger } from '../../packages/core/src/index.js';
import {
  SourceCoordinator,
  type SourceCoordinatorState,
} from '../../packages/jobmanager/src/source-coordinator.js';
import { tempDir } from '../helpers/cli.js';

const log = createLogger('test', {}, 'silent');
const info = (subtaskIndex: number, parallelism: number): TaskInfo => ({
  jobId: 'j',
  taskName: 'Source: files',
  subtaskIndex,
  parallelism,
  attemptNumber: 0,
  workingDirectory: process.cwd(),
});

/** Reaches the coordinator in-process, after a macrotask (as over the network). */
function requester(c: SourceCoordinator, executionId: string, subtask: number): SplitRequester {
  return {
    request: (last, wantMore) =>
      new Promise((resolve, reject) =>
        setImmediate(() => {
          try {
            resolve(c.request(executionId, subtask, last, wantMore));
          } catch (err) {
            reject(err as Error);
          }
        }),
      ),
  };
}

/** Polls `reader` until it ends or emitted `limit` more lines. */
async function read(reader: SourceReader<string>, out: string[], limit = Infinity): Promise<boolean> {
  const start = out.length;
  for (;;) {
    const status = reader.pollNext({ collect: (l) => void out.push(l) });
    if (status === InputStatus.END_OF_INPUT) return true;
    if (out.length - start >= limit) return false;
    if (status === InputStatus.NOTHING_AVAILABLE) await reader.isAvailable();
  }
}

const sorted = (xs: string[]): string[] => [...xs].sort();

/** Files of fixed-width lines (`<prefix><nn>\n`), so byte offsets are easy to state. */
function writeLines(dir: string, name: string, prefix: string, n: number): string[] {
  const lines = Array.from({ length: n }, (_, i) => `${prefix}${String(i).padStart(2, '0')}`);
  writeFileSync(path.join(dir, name), lines.map((l) => l + '\n').join(''));
  return lines;
}

async function coordinator(
  source: TextFileSource,
  parallelism: number,
  restored?: SourceCoordinatorState,
  readerSplits?: unknown[],
): Promise<SourceCoordinator> {
  const c = new SourceCoordinator(source as never, 'op', 'Source: files', parallelism, log, assert.fail);
  await c.start(restored, readerSplits);
  return c;
}

describe('text file source on the split SDK', () => {
  test('the enumerator lists the files once, cuts large ones into blocks, and every line is read once', async () => {
    const dir = tempDir();
    const lines: string[] = [];
    for (let f = 0; f < 5; f++) lines.push(...writeLines(dir, `f${f}.txt`, `f${f}-`, 60));
    // a large file with lines of varying length, cut into 1000-byte blocks that start mid-line
    const big = Array.from({ length: 3000 }, (_, i) => `big ${i} ${'é'.repeat(i % 17)}`);
    writeFileSync(path.join(dir, 'g.txt'), big.join('\r\n'));
    lines.push(...big);
    writeFileSync(path.join(dir, '_SUCCESS'), 'not data\n');
    const source = new TextFileSource(dir, { blockSizeBytes: 1000 });
    // a snapshot holds back later assignments until its barrier: look at the listing in another
    const state = (await coordinator(source, 2)).snapshot(1).enumerator as { pending: FileSourceSplit[] };
    const c = await coordinator(source, 2);
    const ids = state.pending.map((s) => path.basename(s.splitId));
    assert.deepEqual(ids.slice(0, 5), ['f0.txt@0', 'f1.txt@0', 'f2.txt@0', 'f3.txt@0', 'f4.txt@0']);
    assert.ok(ids.length > 40 && ids.slice(5).every((id, k) => id === `g.txt@${k * 1000}`), ids.join(' '));
    const out: string[] = [];
    await Promise.all(
      [0, 1].map(async (i) => {
        const reader = source.createReader(info(i, 2), undefined, requester(c, `e${i}`, i));
        await reader.start?.();
        assert.equal(await read(reader, out), true);
        await reader.close?.();
      }),
    );
    assert.deepEqual(sorted(out), sorted(lines));
  });

  test('a glob in the file name selects files; a missing path or an unmatched glob fails the start naming the source and the path', async () => {
    const dir = tempDir();
    const a = writeLines(dir, 'a.txt', 'a', 3);
    writeLines(dir, 'b.csv', 'b', 3);
    const c = await coordinator(new TextFileSource(path.join(dir, '*.txt')), 1);
    const source = new TextFileSource(path.join(dir, '*.txt'));
    const out: string[] = [];
    const reader = source.createReader(info(0, 1), undefined, requester(c, 'e0', 0));
    await reader.start?.();
    await read(reader, out);
    assert.deepEqual(out, a);
    await assert.rejects(
      coordinator(new TextFileSource(path.join(dir, 'missing')), 1),
      new RegExp(
        `source 'Source: files' could not start: Text file source: no such file or directory: ${dir}/missing \\(a relative path resolves against the job's working directory`,
      ),
    );
    await assert.rejects(
      coordinator(new TextFileSource(path.join(dir, '*.json')), 1),
      /Text file source: no file matches .*\*\.json/,
    );
  });

  test('readers and enumerator restore from a checkpoint, also at another parallelism (2 -> 3): every line once', async () => {
    const dir = tempDir();
    const lines: string[] = [];
    for (let f = 0; f < 6; f++) lines.push(...writeLines(dir, `f${f}.txt`, `f${f}-`, 100));
    const source = new TextFileSource(dir);
    const c = await coordinator(source, 2);
    const seen: string[] = [];
    const readers = await Promise.all(
      [0, 1].map(async (i) => {
        const r = source.createReader(info(i, 2), undefined, requester(c, `e${i}`, i));
        await r.start?.();
        return r;
      }),
    );
    // subtask 0 finishes a file and part of the next; subtask 1 reads part of its first
    await read(readers[0]!, seen, 130);
    await read(readers[1]!, seen, 40);
    for (const r of readers) await r.checkpointReady?.();
    const coordinatorState = c.snapshot(7);
    const readerSplits = readers.flatMap((r) => r.snapshotState!(7));
    for (const r of readers) await r.close?.();
    await c.close();
    // the readers hold two splits with positions; the enumerator the files nobody took
    assert.equal(readerSplits.length, 2);
    assert.ok((readerSplits as FileSourceSplit[]).every((s) => s.exact && s.start > 0));
    assert.equal((coordinatorState.enumerator as { pending: unknown[] }).pending.length, 3);

    const c3 = await coordinator(source, 3, coordinatorState);
    await Promise.all(
      [0, 1, 2].map(async (i) => {
        const mine = readerSplits.filter((_, k) => k % 3 === i);
        const r = source.createReader(info(i, 3), mine, requester(c3, `x${i}`, i));
        await r.start?.();
        assert.equal(await read(r, seen), true);
      }),
    );
    assert.deepEqual(sorted(seen), sorted(lines));
  });

  test('a checkpoint of the text file source before it was a split source (byte ranges without split ids) restores exactly', async () => {
    const dir = tempDir();
    // a.txt: a00..a99, 4 bytes a line (400 bytes); b.txt: b00..b49 (200 bytes). The earlier
    // reader cut the 600 bytes into one range per subtask: subtask 0 [0, 300) of a.txt,
    // subtask 1 [300, 400) of a.txt and [0, 200) of b.txt. At the checkpoint subtask 0 had
    // emitted a00..a09, subtask 1 a75..a99 and b00..b04.
    const a = writeLines(dir, 'a.txt', 'a', 100);
    const b = writeLines(dir, 'b.txt', 'b', 50);
    const fixture: Record<string, unknown[]> = {
      0: [{ path: path.join(dir, 'a.txt'), start: 40, end: 300, exact: true }],
      1: [{ path: path.join(dir, 'b.txt'), start: 20, end: 200, exact: true }],
    };
    const source = new TextFileSource(dir);
    const c = await coordinator(source, 2, undefined, Object.values(fixture).flat());
    const out: string[] = [];
    await Promise.all(
      [0, 1].map(async (i) => {
        const r = source.createReader(info(i, 2), fixture[i], requester(c, `e${i}`, i));
        await r.start?.();
        assert.equal(await read(r, out), true);
      }),
    );
    assert.deepEqual(sorted(out), sorted([...a.slice(10, 75), ...b.slice(5)]));
  });

  test('a subtask restored with a split per file for hundreds of files opens at most 4 of them at once', async () => {
    const dir = tempDir();
    const lines: string[] = [];
    for (let f = 0; f < 300; f++)
      lines.push(...writeLines(dir, `f${String(f).padStart(3, '0')}.txt`, `f${f}-`, 20));
    // an earlier version's checkpoint: one subtask holds a byte range of every file
    const restored = readdirSync(dir).map((n) => ({
      path: path.join(dir, n),
      start: 0,
      end: statSync(path.join(dir, n)).size,
    }));
    const source = new TextFileSource(dir);
    const c = await coordinator(source, 1, undefined, restored);
    const reader = source.createReader(info(0, 1), restored, requester(c, 'e0', 0));
    await reader.start?.();
    const fds = (): number => readdirSync('/proc/self/fd').length;
    const before = fds();
    let most = 0;
    const out: string[] = [];
    for (;;) {
      const status = reader.pollNext({ collect: (l) => void out.push(l) });
      most = Math.max(most, fds() - before);
      if (status === InputStatus.END_OF_INPUT) break;
      if (status === InputStatus.NOTHING_AVAILABLE) await reader.isAvailable();
    }
    assert.deepEqual(sorted(out), sorted(lines));
    assert.ok(most <= 4, `${most} files open at once`);
  });
});
