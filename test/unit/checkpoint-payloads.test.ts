import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import {
  PayloadError,
  computeKeyGroupRangeForOperatorIndex,
  parseCheckpointMetadata,
  parseCheckpointStatsSnapshot,
  buildJobGraph,
  parseJobContext,
  parseJobGraph,
  parseTaskRestoreState,
  parseTaskStateSnapshot,
  type CheckpointMetadata,
  type FullKeyedHandle,
  type IncrementalKeyedHandle,
  type RocksDBNativeKeyedHandle,
  type JobGraph,
} from '../../packages/core/src/index.js';
import { StreamExecutionEnvironment } from '../../packages/api/src/index.js';
import { RestorePlan } from '../../packages/jobmanager/src/restore.js';
import { tempDir } from '../helpers/cli.js';

const full = (p: string, groups: number[]): FullKeyedHandle => ({
  path: p,
  size: 10,
  sha256: 'ab',
  index: Object.fromEntries(groups.map((g) => [String(g), [g * 10, 10]])),
  kinds: { counts: 'value' },
});

const native = (first: number, last: number): RocksDBNativeKeyedHandle => ({
  format: 'rocksdb-native',
  states: [['counts', 'value']],
  keyGroups: [first, last],
  sequence: '1234',
  files: [
    { name: '000009.sst', path: '../shared/3-op-0-x-000009.sst', size: 100, sha256: 'cd', checkpointId: 3 },
    {
      name: 'MANIFEST-000005',
      path: '../shared/4-op-0-y-MANIFEST-000005',
      size: 10,
      sha256: 'ef',
      checkpointId: 4,
    },
  ],
  checkpointedSize: 10,
  fullSize: 110,
});

const incremental = (groups: number[]): IncrementalKeyedHandle => ({
  format: 'incremental',
  kinds: { counts: 'value' },
  files: [{ path: '../shared/3-op-0-x-0', size: 100, sha256: 'cd', checkpointId: 3 }],
  groups: Object.fromEntries(groups.map((g) => [String(g), [[0, g * 10, 10, 1]]])),
  checkpointedSize: 100,
  fullSize: 100,
});

/**
 * `_metadata` exactly as the coordinator has always written it (savepoint of a job with a source,
 * a keyed operator and a two-phase-commit sink), so files on disk stay readable.
 */
const ON_DISK = `{"version":1,"jobId":"0f3c","checkpointId":7,"savepoint":true,"timestamp":1764400000000,"maxParallelism":128,"operators":{"source-0":{"parallelism":2,"subtasks":{"0":{"operatorState":[{"from":0,"to":50}]},"1":{"operatorState":[{"from":50,"to":100}]}}},"uid-count":{"parallelism":2,"subtasks":{"0":{"keyed":{"path":"uid-count/0-1b2c","size":5120,"sha256":"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08","index":{"0":[0,80],"63":[80,40]},"kinds":{"count":"value","seen":"map"}}},"1":{"keyed":{"path":"uid-count/1-3d4e","size":100,"sha256":"ff","index":{"64":[0,100]},"kinds":{"count":"value"}}}}},"sink-3":{"parallelism":2,"subtasks":{"0":{"lists":{"pending-transactions":{"mode":"union","items":[{"owner":0,"txn":"a"}]}}},"1":{}}}}}`;

function metadata(): CheckpointMetadata {
  return parseCheckpointMetadata(ON_DISK, 'test');
}

/** Parses ON_DISK after `mutate` changed it and returns the error message. */
function errorOf(mutate: (md: any) => void): string {
  const md = JSON.parse(ON_DISK);
  mutate(md);
  try {
    parseCheckpointMetadata(JSON.stringify(md), 'checkpoint 7 _metadata');
  } catch (err) {
    assert.ok(err instanceof PayloadError);
    return err.message;
  }
  assert.fail('the payload was accepted');
}

describe('checkpoint metadata', () => {
  test('the on-disk shape parses unchanged; files without savepoint/timestamp and incremental handles too', () => {
    const md = metadata();
    assert.deepEqual(md, JSON.parse(ON_DISK));
    assert.equal(
      (md.operators['uid-count']!.subtasks['0']!.keyed as FullKeyedHandle).path,
      'uid-count/0-1b2c',
    );
    const old = JSON.parse(ON_DISK);
    delete old.savepoint;
    delete old.timestamp;
    old.operators['uid-count'].subtasks['0'].keyed = incremental([0, 1]);
    const parsed = parseCheckpointMetadata(JSON.stringify(old), 'test');
    assert.equal(parsed.operators['uid-count']!.subtasks['0']!.keyed!.format, 'incremental');
  });

  test('each malformed field is named in the error', () => {
    const cases: Array<[(md: any) => void, string]> = [
      [(md) => (md.version = 2), 'version must be one of 1'],
      [(md) => delete md.jobId, 'jobId must be a string'],
      [(md) => (md.checkpointId = '7'), 'checkpointId must be a non-negative integer'],
      [(md) => (md.maxParallelism = 0), 'maxParallelism must be an integer of at least 1'],
      [(md) => (md.savepoint = 'yes'), 'savepoint must be true or false'],
      [(md) => (md.operators = []), 'operators must be an object'],
      [
        (md) => (md.operators['uid-count'].parallelism = 1.5),
        'operators["uid-count"].parallelism must be an integer of at least 1',
      ],
      [
        (md) => (md.operators['uid-count'].subtasks.x = {}),
        'operators["uid-count"].subtasks.x must be keyed by a key group number',
      ],
      [
        (md) => (md.operators['uid-count'].subtasks['0'].keyed.path = 3),
        'operators["uid-count"].subtasks["0"].keyed.path must be a string',
      ],
      [
        (md) => delete md.operators['uid-count'].subtasks['0'].keyed.sha256,
        'operators["uid-count"].subtasks["0"].keyed.sha256 must be a string',
      ],
      [
        (md) => (md.operators['uid-count'].subtasks['0'].keyed.index['63'] = [80]),
        'operators["uid-count"].subtasks["0"].keyed.index["63"] must be [offset, length] or several such pairs (an even number of elements)',
      ],
      [
        (md) => (md.operators['uid-count'].subtasks['0'].keyed.index['63'] = [0, 10, 20]),
        'operators["uid-count"].subtasks["0"].keyed.index["63"] must be [offset, length] or several such pairs (an even number of elements)',
      ],
      [
        (md) => (md.operators['uid-count'].subtasks['0'].keyed.index['0'] = [0, 10, 20, -1]),
        'operators["uid-count"].subtasks["0"].keyed.index["0"][3] must be a non-negative integer',
      ],
      [
        (md) => (md.operators['uid-count'].subtasks['0'].keyed.index['0'][1] = -1),
        'operators["uid-count"].subtasks["0"].keyed.index["0"][1] must be a non-negative integer',
      ],
      [
        (md) => (md.operators['uid-count'].subtasks['0'].keyed.kinds.count = 1),
        'operators["uid-count"].subtasks["0"].keyed.kinds.count must be a string',
      ],
      [
        (md) => (md.operators['uid-count'].subtasks['0'].keyed.format = 'delta'),
        'operators["uid-count"].subtasks["0"].keyed.format must be "incremental", "rocksdb-native" or absent (the full format)',
      ],
      [
        (md) => (md.operators['source-0'].subtasks['1'].operatorState = {}),
        'operators["source-0"].subtasks["1"].operatorState must be an array',
      ],
      [
        (md) => (md.operators['sink-3'].subtasks['0'].lists['pending-transactions'].mode = 'all'),
        'operators["sink-3"].subtasks["0"].lists["pending-transactions"].mode must be one of "split", "union"',
      ],
      [
        (md) => delete md.operators['sink-3'].subtasks['0'].lists['pending-transactions'].items,
        'operators["sink-3"].subtasks["0"].lists["pending-transactions"].items must be an array',
      ],
    ];
    for (const [mutate, message] of cases)
      assert.equal(errorOf(mutate), `checkpoint 7 _metadata: ${message}`);
  });

  test('native RocksDB handles: file names, key groups and files are checked', () => {
    const withHandle = (change: (h: any) => void) =>
      errorOf((md) => {
        const h: any = native(0, 63);
        change(h);
        md.operators['uid-count'].subtasks['0'].keyed = h;
      });
    const at = 'checkpoint 7 _metadata: operators["uid-count"].subtasks["0"].keyed';
    // a valid one parses
    const md = JSON.parse(ON_DISK);
    md.operators['uid-count'].subtasks['0'].keyed = native(0, 63);
    assert.deepEqual(
      parseCheckpointMetadata(JSON.stringify(md), 'test').operators['uid-count']!.subtasks['0']!.keyed,
      native(0, 63),
    );
    // a name becomes a path in the database's directory: nothing that leaves it
    assert.equal(
      withHandle((h) => (h.files[0].name = '../000009.sst')),
      `${at}.files[0].name must be a file name of a RocksDB database`,
    );
    assert.equal(
      withHandle((h) => (h.keyGroups = [64, 63])),
      `${at}.keyGroups must be [first, last] with first <= last`,
    );
    assert.equal(
      withHandle((h) => (h.files[1].checkpointId = 0)),
      `${at}.files[1].checkpointId must be an integer of at least 1`,
    );
    assert.equal(
      withHandle((h) => (h.sequence = 1234)),
      `${at}.sequence must be a string`,
    );
    assert.equal(
      withHandle((h) => (h.states[0] = ['counts'])),
      `${at}.states[0] must be [name, kind] (2 elements)`,
    );
  });

  test('incremental handles: files, chains and sizes are checked', () => {
    const withHandle = (change: (h: any) => void) =>
      errorOf((md) => {
        const h: any = incremental([5]);
        change(h);
        md.operators['uid-count'].subtasks['0'].keyed = h;
      });
    const at = 'checkpoint 7 _metadata: operators["uid-count"].subtasks["0"].keyed';
    assert.equal(
      withHandle((h) => (h.files[0].checkpointId = 0)),
      `${at}.files[0].checkpointId must be an integer of at least 1`,
    );
    assert.equal(
      withHandle((h) => (h.groups['5'][0][0] = 1)),
      `${at}.groups["5"][0][0] must be an index into files (1 listed)`,
    );
    assert.equal(
      withHandle((h) => (h.groups['5'][0][3] = 2)),
      `${at}.groups["5"][0][3] must be one of 0, 1`,
    );
    assert.equal(
      withHandle((h) => h.groups['5'][0].pop()),
      `${at}.groups["5"][0] must be [file, offset, length, full] (4 elements)`,
    );
    assert.equal(
      withHandle((h) => delete h.fullSize),
      `${at}.fullSize must be a number`,
    );
  });

  test('text that is not JSON', () => {
    assert.throws(
      () => parseCheckpointMetadata('{"version":', 'chk-3/_metadata'),
      /^PayloadError: chk-3\/_metadata: not valid JSON \(/,
    );
    assert.throws(
      () => parseCheckpointMetadata('[]', 'm'),
      /^PayloadError: m: the payload must be an object$/,
    );
  });
});

describe('acknowledgement, restore state, statistics and job context', () => {
  test('a task state snapshot: empty is no state; each operator entry is an OperatorSubtaskState', () => {
    assert.deepEqual(parseTaskStateSnapshot('', 'ack'), {});
    const ack = { 'uid-count': { keyed: incremental([1]) }, 'source-0': { operatorState: [1] } };
    assert.deepEqual(parseTaskStateSnapshot(JSON.stringify(ack), 'ack'), ack);
    assert.throws(
      () =>
        parseTaskStateSnapshot(
          JSON.stringify({ op: { keyed: { ...full('p', [1]), size: 'big' } } }),
          'ack of 4',
        ),
      /^PayloadError: ack of 4: op\.keyed\.size must be a non-negative integer$/,
    );
  });

  test('restore state: empty is no restore; keyed handles and splits are checked', () => {
    assert.equal(parseTaskRestoreState('', 'r'), undefined);
    const r = {
      storage: 'file:///x',
      checkpointId: 7,
      operators: { a: { keyed: [full('f', [1]), incremental([2])], splits: [1] } },
    };
    assert.deepEqual(parseTaskRestoreState(JSON.stringify(r), 'r'), r);
    const bad = { ...r, operators: { a: { keyed: [full('f', [1]), { ...full('g', [2]), path: null }] } } };
    assert.throws(() => parseTaskRestoreState(JSON.stringify(bad), 'restore state of task map (1/2)'), {
      message: 'restore state of task map (1/2): operators.a.keyed[1].path must be a string',
    });
    assert.throws(() => parseTaskRestoreState('{"operators":{}}', 'r'), {
      message: 'r: storage must be a string',
    });
  });

  test('checkpoint statistics', () => {
    assert.deepEqual(parseCheckpointStatsSnapshot('{"disabled":true}', 's'), { disabled: true });
    const stats = {
      id: 3,
      savepoint: false,
      status: 'COMPLETED',
      triggerTime: 1,
      endTime: 5,
      durationMs: 4,
      stateSizeBytes: 10,
      maxSyncDurationMs: 1,
      maxAsyncDurationMs: 2,
      maxAlignmentDurationMs: 0,
      path: 'file:///c/j/chk-3',
      subtasks: [
        { executionId: 'e', vertex: 'map', subtask: 0, acknowledged: true, ackTime: 5, stateSizeBytes: 10 },
      ],
    };
    const s = {
      counts: { completed: 1, failed: 0, inProgress: 0 },
      latestCompleted: stats,
      history: [stats],
      settings: {},
    };
    assert.deepEqual(parseCheckpointStatsSnapshot(JSON.stringify(s), 's'), s);
    const bad = { ...s, history: [stats, { ...stats, status: 'DONE' }] };
    assert.throws(() => parseCheckpointStatsSnapshot(JSON.stringify(bad), 'checkpoint statistics of job j'), {
      message:
        'checkpoint statistics of job j: history[1].status must be one of "IN_PROGRESS", "COMPLETED", "FAILED"',
    });
  });

  test('job context', () => {
    assert.deepEqual(parseJobContext('', 'c'), {});
    assert.deepEqual(parseJobContext('{"workingDirectory":"/w","args":["a"]}', 'c'), {
      workingDirectory: '/w',
      args: ['a'],
    });
    assert.throws(() => parseJobContext('{"args":["a",1]}', 'Invalid job context'), {
      message: 'Invalid job context: args[1] must be a string',
    });
  });
});

describe('job graph', () => {
  const built = () => {
    const env = StreamExecutionEnvironment.getExecutionEnvironment();
    env.enableCheckpointing(1_000);
    env
      .fromElements(1, 2, 3)
      .map((n) => n * 2)
      .keyBy((n) => n % 2)
      .sinkTo({ createWriter: () => ({ write: () => {} }) });
    return JSON.parse(JSON.stringify(buildJobGraph(env.getStreamGraph('j'))));
  };

  test('a graph the planner built passes unchanged', () => {
    const g = built();
    assert.ok(g.edges.length > 0);
    assert.deepEqual(parseJobGraph(JSON.stringify(g), 'Invalid job graph'), g);
  });

  test('malformed fields and edges to unknown vertices are named', () => {
    const cases: Array<[(g: any) => void, string]> = [
      [(g) => (g.vertices = []), 'vertices must be a non-empty array (the job graph has no vertices)'],
      [(g) => (g.vertices[0].parallelism = 0), 'vertices[0].parallelism must be an integer of at least 1'],
      [
        (g) => (g.vertices[1].operators[0].keyed = 'yes'),
        'vertices[1].operators[0].keyed must be true or false',
      ],
      [
        (g) => (g.edges[0].targetVertexId = 'nope'),
        'edges[0].targetVertexId must be the id of a vertex of the graph',
      ],
      [
        (g) => (g.edges[0].partitioner = 'random'),
        'edges[0].partitioner must be one of "forward", "hash", "rebalance", "broadcast"',
      ],
      [(g) => delete g.checkpoint, 'checkpoint must be an object'],
    ];
    for (const [mutate, message] of cases) {
      const g = built();
      mutate(g);
      assert.throws(() => parseJobGraph(JSON.stringify(g), 'Invalid job graph'), {
        message: `Invalid job graph: ${message}`,
      });
    }
  });
});

describe('RestorePlan.forSubtask', () => {
  const MAX_P = 8;
  const graph = (ids: string[]): JobGraph =>
    ({ maxParallelism: MAX_P, vertices: [{ operators: ids.map((id) => ({ id })) }], edges: [] }) as never;

  async function plan(md: object, ids: string[], allowNonRestoredState = false): Promise<RestorePlan> {
    const dir = tempDir('weir-restore-plan-');
    writeFileSync(path.join(dir, '_metadata'), JSON.stringify(md));
    return RestorePlan.load(dir, graph(ids), allowNonRestoredState);
  }

  const md = {
    version: 1,
    jobId: 'j',
    checkpointId: 9,
    maxParallelism: MAX_P,
    operators: {
      src: { parallelism: 2, subtasks: { 0: { operatorState: ['a', 'b'] }, 1: { operatorState: ['c'] } } },
      count: {
        parallelism: 2,
        subtasks: { 0: { keyed: full('count/0', [0, 1, 2, 3]) }, 1: { keyed: incremental([4, 5, 6, 7]) } },
      },
      sink: {
        parallelism: 2,
        subtasks: {
          0: { lists: { txns: { mode: 'union', items: ['t0'] }, split: { mode: 'split', items: [1, 2] } } },
          1: { lists: { txns: { mode: 'union', items: ['t1'] }, split: { mode: 'split', items: [3] } } },
        },
      },
    },
  };

  test('rescaled 2 -> 3: each subtask gets the keyed handles overlapping its key-group range', async () => {
    const p = await plan(md, ['src', 'count', 'sink']);
    const keyed = (i: number) =>
      p
        .forSubtask(['count'], i, 3)!
        .operators.count!.keyed?.map((h) => (h.format === undefined ? h.path : h.format));
    // ranges of 8 key groups over 3 subtasks: 0-2, 3-5, 6-7
    assert.deepEqual(
      [0, 1, 2].map((i) => computeKeyGroupRangeForOperatorIndex(MAX_P, 3, i)).map((r) => [r.start, r.end]),
      [
        [0, 2],
        [3, 5],
        [6, 7],
      ],
    );
    assert.deepEqual(keyed(0), ['count/0']);
    assert.deepEqual(keyed(1), ['count/0', 'incremental']);
    assert.deepEqual(keyed(2), ['incremental']);
    const r = p.forSubtask(['count'], 1, 3)!;
    assert.equal(r.checkpointId, 9);
    assert.equal(r.storage, p.storageRoot);
  });

  test('native RocksDB handles are dealt by the key groups they record: all of them at equal parallelism, the overlapping ones when rescaled', async () => {
    const nativeMd = structuredClone(md);
    nativeMd.operators.count.subtasks = { 0: { keyed: native(0, 3) }, 1: { keyed: native(4, 7) } } as never;
    const p = await plan(nativeMd, ['src', 'count', 'sink']);
    const ranges = (i: number, n: number) =>
      p
        .forSubtask(['count'], i, n)!
        .operators.count!.keyed?.map((h) => (h.format === 'rocksdb-native' ? h.keyGroups : undefined));
    assert.deepEqual(ranges(0, 2), [[0, 3]]);
    assert.deepEqual(ranges(1, 2), [[4, 7]]);
    assert.deepEqual(ranges(1, 3), [
      [0, 3],
      [4, 7],
    ]);
    assert.deepEqual(ranges(2, 3), [[4, 7]]);
  });

  test('operator state: kept per subtask at equal parallelism, dealt round-robin when rescaled; union lists go to everyone', async () => {
    const p = await plan(md, ['src', 'count', 'sink']);
    assert.deepEqual(p.forSubtask(['src'], 0, 2)!.operators.src!.splits, ['a', 'b']);
    assert.deepEqual(p.forSubtask(['src'], 1, 2)!.operators.src!.splits, ['c']);
    assert.deepEqual(
      [0, 1, 2].map((i) => p.forSubtask(['src'], i, 3)!.operators.src!.splits),
      [['a'], ['b'], ['c']],
    );
    assert.deepEqual(p.forSubtask(['sink'], 1, 2)!.operators.sink!.lists, {
      txns: { mode: 'union', items: ['t0', 't1'] },
      split: { mode: 'split', items: [3] },
    });
    assert.deepEqual(p.forSubtask(['sink'], 0, 1)!.operators.sink!.lists, {
      txns: { mode: 'union', items: ['t0', 't1'] },
      split: { mode: 'split', items: [1, 2, 3] },
    });
    // an operator the checkpoint does not know gets nothing
    assert.deepEqual(p.forSubtask(['new-op'], 0, 2)!.operators, {});
  });

  test('state of operators the job lacks is refused unless allowed; corrupt handles fail the load as CORRUPT', async () => {
    await assert.rejects(
      plan(md, ['src', 'count']),
      /has state for operators the job does not have: sink\. Set uid\(\)/,
    );
    const p = await plan(md, ['src', 'count'], true);
    assert.equal(p.forSubtask(['count'], 0, 1)!.operators.count!.keyed!.length, 2);
    const bad = structuredClone(md) as any;
    bad.operators.count.subtasks[0].keyed.index['2'] = 'x';
    await assert.rejects(plan(bad, ['src', 'count', 'sink']), (err: Error & { reason?: string }) => {
      assert.equal(err.reason, 'CORRUPT');
      assert.match(
        err.message,
        /^Corrupt checkpoint metadata .*_metadata: operators\.count\.subtasks\["0"\]\.keyed\.index\["2"\] must be an array$/,
      );
      return true;
    });
  });
});
