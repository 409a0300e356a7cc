import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { ClusterClient } from '../../packages/client/src/cluster-client.js';
import { ROOT, TestCluster, tempDir, until, untilJobFinished } from '../helpers/cli.js';

const job = path.join(ROOT, 'test/jobs/two-pipelines.ts');
const RECORDS = 18_000;
const RATE = 3_000;

/** Final [key, count, sum] per key of a FileSink directory; throws on a repeated or missing count. */
function lastPerKey(dir: string): Map<number, [number, number]> {
  const seen = new Map<number, Set<number>>();
  const last = new Map<number, [number, number]>();
  for (const f of readdirSync(dir).filter((n) => n.startsWith('part-'))) {
    for (const line of readFileSync(path.join(dir, f), 'utf8').split('\n')) {
      if (!line) continue;
      const [k, c, s] = JSON.parse(line) as [number, number, number];
      const counts = seen.get(k) ?? new Set<number>();
      assert.ok(!counts.has(c), `${dir} key ${k}: count ${c} repeated`);
      counts.add(c);
      seen.set(k, counts);
      if ((last.get(k)?.[0] ?? 0) < c) last.set(k, [c, s]);
    }
  }
  for (const [k, counts] of seen) assert.equal(counts.size, last.get(k)![0], `${dir} key ${k}: no gap`);
  return last;
}

/** Local RocksDB checkpoints kept under a cluster's directory. */
function localCheckpointsIn(dir: string): number {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' }).filter((f) =>
    f.endsWith('weir-local-checkpoint.json'),
  ).length;
}

/** The output has the final count of all 100 keys, each counting every record once. */
function assertEveryRecordCountedOnce(out: string): void {
  const last = lastPerKey(out);
  assert.equal(last.size, 100);
  for (const [k, [c]] of last) assert.equal(c, RECORDS / 100, `${out} key ${k}: every record counted once`);
}

describe('local recovery', () => {
  let cluster: TestCluster;
  const work = tempDir();

  before(async () => {
    cluster = await new TestCluster({
      taskManagers: 1,
      slots: 2,
      extra: ['-D', 'state.backend.local-recovery=true'],
    }).start();
  });
  after(async () => {
    await cluster?.stop();
  });

  test('after kill -9, the TaskManager restarted with its id gets the tasks back and restores them from its local copies', async () => {
    const client = await ClusterClient.connect(cluster.address);
    try {
      const outA = path.join(work, 'a');
      const outB = path.join(work, 'b');
      const r = await cluster.run([
        'run',
        job,
        '--detached',
        '--',
        String(RECORDS),
        String(RATE),
        outA,
        outB,
      ]);
      assert.equal(r.code, 0, r.stderr);
      const jobId = /submitted with id (\w+)/.exec(r.stdout)![1]!;
      await until(
        'all tasks running',
        async () => {
          const s = await client.status(jobId);
          return s.vertices.every((v) => v.subtasks.every((t) => t.state === 'RUNNING')) ? s : undefined;
        },
        60_000,
      );
      await new Promise((res) => setTimeout(res, 2_000));
      process.kill(cluster.taskManagerPid('tm-1'), 'SIGKILL');
      const d = await untilJobFinished(client, jobId);
      assert.ok(d.numRestarts >= 1);
      assert.ok(
        d.restarts.every((x) => Number(x.restoredCheckpointId) > 0),
        `restarts restored a checkpoint: ${JSON.stringify(d.restarts)}`,
      );
      const log = readFileSync(path.join(cluster.logDir(), 'taskmanager-1.log'), 'utf8');
      const restores = log.split('\n').filter((l) => l.includes('restored from local copies'));
      assert.ok(
        restores.length >= 2,
        `keyed state of both pipelines came from local copies:\n${log.slice(-3000)}`,
      );
      assert.doesNotMatch(log, /from remote storage/);
      for (const out of [outA, outB]) assertEveryRecordCountedOnce(out);
    } finally {
      client.close();
    }
  });
});

/** The pids the cluster printed for its standby TaskManagers as each became ready. */
function standbyPids(cluster: TestCluster): number[] {
  return [...cluster.out.matchAll(/standby TaskManager ready \(pid (\d+)\)/g)].map((m) => Number(m[1]));
}

// RocksDB with a standby TaskManager (it takes the killed one's id and local state); RocksDB
// with native checkpoints, and heap, with the killed TaskManager started again as a new process
for (const [backend, variant] of [
  ['heap', ''],
  ['rocksdb', 'standby'],
  ['rocksdb', 'native'],
] as const)
  describe(`local recovery of a job that is one pipelined region, over 2 TaskManagers x 1 slot (${backend}${variant === 'standby' ? ', standby TaskManager' : variant === 'native' ? ', native checkpoints' : ''})`, () => {
    let cluster: TestCluster;
    const work = tempDir();
    const standby = variant === 'standby';

    before(async () => {
      cluster = await new TestCluster({
        taskManagers: 2,
        slots: 1,
        extra: [
          '-D',
          'state.backend.local-recovery=true',
          '-D',
          `state.backend=${backend}`,
          ...(standby ? ['--standby-taskmanager'] : []),
          // the standby variant keeps RocksDB's canonical format covered
          ...(backend === 'rocksdb'
            ? ['-D', `state.backend.rocksdb.native-checkpoints=${variant === 'native'}`]
            : []),
        ],
      }).start();
    });
    after(async () => {
      await cluster?.stop();
    });

    test('after kill -9 of one TaskManager the whole job restarts, and every subtask goes back to the TaskManager that holds its local copy', async () => {
      const client = await ClusterClient.connect(cluster.address);
      try {
        const out = path.join(work, 'out');
        const r = await cluster.run([
          'run',
          job,
          '--detached',
          '--',
          String(RECORDS),
          String(RATE),
          out,
          '',
          '2',
        ]);
        assert.equal(r.code, 0, r.stderr);
        const jobId = /submitted with id (\w+)/.exec(r.stdout)![1]!;
        await until(
          'a checkpoint completed with all tasks running',
          async () => {
            const [s, c] = await Promise.all([client.status(jobId), client.checkpoints(jobId)]);
            const running = s.vertices.every((v) => v.subtasks.every((t) => t.state === 'RUNNING'));
            return running && Number(c.counts?.completed ?? 0) >= 2 ? s : undefined;
          },
          60_000,
        );
        // tm-1, not a random one: it registers again after tm-2, the order in which a restart
        // without slot preferences gave each TaskManager the other's subtask
        process.kill(cluster.taskManagerPid('tm-1'), 'SIGKILL');
        const d = await untilJobFinished(client, jobId);
        assert.ok(d.numRestarts >= 1);
        if (standby) {
          // the process that was waiting became tm-1, and another standby started behind it
          const [first] = standbyPids(cluster);
          assert.ok(
            cluster.out.includes(`the standby TaskManager (pid ${first}) takes over as tm-1`),
            cluster.out,
          );
          assert.equal(cluster.taskManagerPid('tm-1'), first);
          await until('a second standby ready', () => Promise.resolve(standbyPids(cluster)[1]), 30_000);
        }
        // tm-1 came back with its slot's worker thread started before it registered: the first
        // task deployed to it, before the kill and after, found the worker's code loaded (a
        // started blank worker, or one already prewarmed with the job's bundle)
        const deploys = readFileSync(path.join(cluster.logDir(), 'taskmanager-1.log'), 'utf8')
          .split('\n')
          .filter((l) => l.includes('"deploying task"'));
        const firstPerStart = new Map<number, string>();
        for (const l of deploys) {
          const pid = (JSON.parse(l) as { pid: number }).pid;
          if (!firstPerStart.has(pid)) firstPerStart.set(pid, l);
        }
        assert.equal(firstPerStart.size, 2, `two starts of tm-1:\n${deploys.join('\n')}`);
        for (const l of firstPerStart.values())
          assert.match(
            l,
            /"blankWorker":true|"prewarmed":true/,
            `the first deployment of each start of tm-1 found a started worker:\n${deploys.join('\n')}`,
          );
        for (const tm of ['taskmanager-1', 'taskmanager-2']) {
          const log = readFileSync(path.join(cluster.logDir(), `${tm}.log`), 'utf8');
          const restores = log.split('\n').filter((l) => l.includes('Count a') && l.includes('restored'));
          assert.ok(restores.length >= 1, `${tm} restored its keyed subtask:\n${log.slice(-3000)}`);
          assert.ok(
            restores.every((l) => l.includes('restored from local copies')),
            `${tm}: keyed state from its local copy, not remote storage:\n${restores.join('\n')}`,
          );
          // RocksDB opens its database as the checkpoint left it: no checkpoint file read
          if (backend === 'rocksdb')
            assert.ok(
              restores.every(
                (l) => l.includes('(1 local RocksDB checkpoint') && l.includes('and 0 files, 0.0 MB)'),
              ),
              `${tm}: RocksDB state from its local checkpoint:\n${restores.join('\n')}`,
            );
        }
        assertEveryRecordCountedOnce(out);
        // the job ended: the TaskManagers drop its local RocksDB checkpoints at their next heartbeat
        if (backend === 'rocksdb')
          await until(
            'local RocksDB checkpoints of the finished job removed',
            () => Promise.resolve(localCheckpointsIn(cluster.dir) === 0 || undefined),
            30_000,
          );
      } finally {
        client.close();
      }
    });

    if (standby)
      test('a standby that dies waiting is replaced, and a TaskManager that dies meanwhile starts as a new process', async () => {
        const waiting = await until(
          'a standby ready',
          () => Promise.resolve(standbyPids(cluster).at(-1)),
          30_000,
        );
        const count = standbyPids(cluster).length;
        const tm2 = cluster.taskManagerPid('tm-2');
        process.kill(waiting, 'SIGKILL');
        await until(
          'the cluster saw the standby exit',
          () => Promise.resolve(cluster.out.includes('standby TaskManager exited (SIGKILL)') || undefined),
          10_000,
        );
        process.kill(tm2, 'SIGKILL');
        await until(
          'tm-2 running as a new process',
          async () => {
            const pid = cluster.taskManagerPid('tm-2');
            return pid !== tm2 && pid !== waiting ? pid : undefined;
          },
          30_000,
        );
        assert.match(cluster.out, /taskmanager-2 exited \(SIGKILL\); starting it again in \d+ ms/);
        await until('another standby ready', () => Promise.resolve(standbyPids(cluster)[count]), 30_000);
        const client = await ClusterClient.connect(cluster.address);
        try {
          await until(
            'both TaskManagers registered',
            async () => ((await client.overview()).taskManagers.length === 2 ? true : undefined),
            30_000,
          );
        } finally {
          client.close();
        }
      });
  });
