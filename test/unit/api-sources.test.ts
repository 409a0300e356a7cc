import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import {
  SplitSourceReader,
  CollectionSource,
  DataGeneratorSource,
  FileSink,
  InputStatus,
  NumberSequenceSource,
  SocketTextSource,
  TextFileSource,
  type Source,
  type TaskInfo,
} from '../../packages/api/src/index.js';
import { tempDir } from '../helpers/cli.js';

const info = (subtaskIndex: number, parallelism: number, workingDirectory = process.cwd()): TaskInfo => ({
  jobId: 'j',
  taskName: 't',
  subtaskIndex,
  parallelism,
  attemptNumber: 0,
  workingDirectory,
});

/** Drives one reader the way a source task does, to its end. */
async function drain<T>(source: Source<T>, ctx: TaskInfo, limit = Infinity): Promise<T[]> {
  const reader = source.createReader(ctx);
  await reader.start?.();
  const out: T[] = [];
  const output = { collect: (r: T) => void out.push(r) };
  for (;;) {
    const s = reader.pollNext(output);
    if (s === InputStatus.END_OF_INPUT || out.length >= limit) break;
    if (s === InputStatus.NOTHING_AVAILABLE) await reader.isAvailable();
  }
  await reader.close?.();
  return out;
}

async function all<T>(source: Source<T>, p: number, cwd?: string): Promise<T[]> {
  const parts = await Promise.all(Array.from({ length: p }, (_, i) => drain(source, info(i, p, cwd))));
  return parts.flat();
}

const sorted = <T>(xs: T[]): T[] => [...xs].sort();

describe('built-in sources', () => {
  test('collection and sequence sources emit every element once over all subtasks', async () => {
    const elems = Array.from({ length: 1000 }, (_, i) => `e${i}`);
    for (const p of [1, 2, 3, 5]) {
      assert.deepEqual(sorted(await all(new CollectionSource(elems), p)), sorted(elems));
      const seq = await all(new NumberSequenceSource(-5, 2000), p);
      assert.equal(seq.length, 2006);
      assert.deepEqual(
        [...seq].sort((a, b) => a - b),
        Array.from({ length: 2006 }, (_, i) => i - 5),
      );
    }
    assert.throws(() => new NumberSequenceSource(5, 1), /from <= to/);
  });

  test('text files are split by byte ranges and every line is read exactly once', async () => {
    const dir = tempDir();
    const lines: string[] = [];
    const files: Record<string, string> = {
      'a.txt':
        Array.from({ length: 5000 }, (_, i) => {
          const l = `line ${i} ${'x'.repeat(i % 97)} ünïcödé ✓`;
          lines.push(l);
          return l;
        }).join('\n') + '\n',
      'b.txt': 'crlf one\r\ncrlf two\r\nno newline at end',
      'c.txt': '',
      'd.txt': 'x',
      '.hidden': 'ignored\n',
    };
    lines.push('crlf one', 'crlf two', 'no newline at end', 'x');
    for (const [n, c] of Object.entries(files)) writeFileSync(path.join(dir, n), c);
    for (const p of [1, 2, 3, 5, 16]) {
      assert.deepEqual(sorted(await all(new TextFileSource(dir), p)), sorted(lines), `parallelism ${p}`);
    }
    const single = await all(new TextFileSource('a.txt'), 3, dir);
    assert.equal(single.length, 5000);
    await assert.rejects(
      drain(new TextFileSource(path.join(dir, 'missing')), info(0, 1)),
      /no such file or directory: .*missing/,
    );
  });

  test('a text-file reader resumes from its snapshot, also on another number of subtasks', async () => {
    const dir = tempDir();
    const lines = Array.from({ length: 20_000 }, (_, i) => `l${i} ${'é'.repeat(i % 13)}`);
    writeFileSync(path.join(dir, 'a.txt'), lines.slice(0, 12_000).join('\n') + '\n');
    writeFileSync(path.join(dir, 'b.txt'), lines.slice(12_000).join('\r\n'));
    const source = new TextFileSource(dir);
    const seen: string[] = [];
    const splits: unknown[] = [];
    for (let i = 0; i < 2; i++) {
      const reader = source.createReader(info(i, 2));
      await reader.start?.();
      const part = i === 0 ? 3_000 : 7_100;
      const out = { collect: (r: string) => void seen.push(r) };
      let n = 0;
      while (n < part) {
        const before = seen.length;
        const st = reader.pollNext(out);
        n += seen.length - before;
        if (st === InputStatus.NOTHING_AVAILABLE) await reader.isAvailable();
        if (st === InputStatus.END_OF_INPUT) break;
      }
      splits.push(...(reader.snapshotState!() as unknown[]));
      await reader.close?.();
    }
    for (let i = 0; i < 3; i++) {
      const mine = splits.filter((_, k) => k % 3 === i);
      seen.push(
        ...(await drain(
          {
            ...source,
            boundedness: 'BOUNDED',
            createReader: (ctx: TaskInfo) => source.createReader(ctx, mine),
          } as Source<string>,
          info(i, 3),
        )),
      );
    }
    assert.deepEqual(sorted(seen), sorted(lines));
  });

  test('collection, sequence and generator are split sources: subtask order as before, and old checkpoints restore', async () => {
    const elems = Array.from({ length: 10 }, (_, i) => `e${i}`);
    // subtask i of p reads indices i, i+p, ... in order; a sequence reads one contiguous range
    assert.deepEqual(await drain(new CollectionSource(elems), info(1, 3)), ['e1', 'e4', 'e7']);
    assert.deepEqual(await drain(new NumberSequenceSource(1, 10), info(1, 2)), [6, 7, 8, 9, 10]);
    const fresh = new NumberSequenceSource(1, 10).createReader(info(0, 2));
    assert.ok(fresh instanceof SplitSourceReader);
    assert.deepEqual(fresh.snapshotState!(), [{ splitId: 'sequence-0', next: 1, step: 1, end: 6 }]);
    // the position as checkpoints before the split SDK kept it: progressions without a split id
    const old = [
      { next: 4, step: 3, end: 10 },
      { next: 8, step: 3, end: 10 },
    ];
    const collection = new CollectionSource(elems).createReader(info(0, 1), old);
    const got: string[] = [];
    await collection.start?.();
    while (collection.pollNext({ collect: (r) => got.push(r) }) !== InputStatus.END_OF_INPUT);
    assert.deepEqual(sorted(got), ['e4', 'e7', 'e8']);
    const generator = new DataGeneratorSource((i) => i * 10, 10).createReader(info(0, 1), [
      { next: 7, step: 1, end: 10 },
    ]);
    const gen: number[] = [];
    while (generator.pollNext({ collect: (r) => gen.push(r) }) !== InputStatus.END_OF_INPUT);
    assert.deepEqual(gen, [70, 80, 90]);
    // a restored split gets an id from its fields, and keeps its position in the next checkpoint
    const seq = new NumberSequenceSource(1, 5000).createReader(info(0, 1), [
      { next: 50, step: 1, end: 5001 },
    ]);
    let n = 0;
    seq.pollNext({ collect: () => void n++ });
    assert.deepEqual(seq.snapshotState!(), [
      { splitId: 'restored:50:1:5001', next: 50 + n, step: 1, end: 5001 },
    ]);
  });

  test('the data generator honours count, subtask split and rate', async () => {
    const gen = new DataGeneratorSource((i) => i * 2, 1000);
    assert.deepEqual(
      [...(await all(gen, 3))].sort((a, b) => a - b),
      Array.from({ length: 1000 }, (_, i) => i * 2),
    );
    const limited = new DataGeneratorSource((i) => i, undefined, 2000);
    const reader = limited.createReader(info(0, 1));
    let n = 0;
    const t0 = Date.now();
    while (Date.now() - t0 < 500) {
      if (reader.pollNext({ collect: () => void n++ }) === InputStatus.NOTHING_AVAILABLE)
        await reader.isAvailable();
    }
    assert.ok(n > 700 && n < 1300, `about 1000 records in 0.5 s at 2000/s, got ${n}`);
  });

  test('the socket source reads lines until the server closes', async () => {
    const server = net.createServer((s) => {
      s.write('alpha\nbeta\r\n');
      setTimeout(() => s.end('gamma\nlast'), 50);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as net.AddressInfo).port;
    try {
      assert.deepEqual(await drain(new SocketTextSource('127.0.0.1', port), info(0, 1)), [
        'alpha',
        'beta',
        'gamma',
        'last',
      ]);
    } finally {
      server.close();
    }
    await assert.rejects(
      drain(new SocketTextSource('127.0.0.1', 1), info(0, 1)),
      /Socket source 127\.0\.0\.1:1/,
    );
  });
});

describe('FileSink', () => {
  test('writes to a dot file while open and commits part files on close', async () => {
    const dir = tempDir();
    const sink = new FileSink<[string, number] | string>({ path: 'out', format: 'lines' });
    const w = sink.createWriter(info(1, 2, dir));
    for (let i = 0; i < 20_000; i++) w.write(i % 2 ? ['k', i] : `s${i}`);
    const during = readdirSync(path.join(dir, 'out'));
    assert.ok(
      during.every((f) => f.startsWith('.')),
      `only in-progress files while open: ${during}`,
    );
    await w.close?.();
    const files = readdirSync(path.join(dir, 'out'));
    assert.equal(files.length, 1);
    assert.match(files[0]!, /^part-1-[0-9a-f]{32}-0$/);
    const lines = readFileSync(path.join(dir, 'out', files[0]!), 'utf8')
      .trimEnd()
      .split('\n');
    assert.equal(lines.length, 20_000);
    assert.equal(lines[0], 's0');
    assert.equal(lines[1], '["k",1]');
  });

  test('a small output (under one write buffer) is committed too', async () => {
    const dir = tempDir();
    const w = new FileSink<string>({ path: 'small' }).createWriter(info(0, 1, dir));
    w.write('only line');
    await w.flush?.(true);
    await w.close?.();
    const [file] = readdirSync(path.join(dir, 'small'));
    assert.equal(readFileSync(path.join(dir, 'small', file!), 'utf8'), 'only line\n');
  });

  test('an unwritable path is named in the error', async () => {
    const dir = tempDir();
    writeFileSync(path.join(dir, 'file'), 'x');
    mkdirSync(path.join(dir, 'ok'));
    const w = new FileSink<string>({ path: path.join(dir, 'file', 'sub') }).createWriter(info(0, 1));
    w.write('a');
    await assert.rejects(async () => w.flush?.(true), /FileSink cannot write to .*file\/sub/);
  });
});
