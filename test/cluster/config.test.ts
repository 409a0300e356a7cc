import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseClusterConfig, parseDuration } from '../../packages/core/src/config.js';
import { ClusterClient } from '../../packages/client/src/cluster-client.js';
import { ROOT, TestCluster, tempDir, weir } from '../helpers/cli.js';

describe('cluster configuration file', () => {
  test('flat and nested YAML with Flink key names, durations and storage URIs', () => {
    const c = parseClusterConfig(
      `
execution.checkpointing.interval: 10 s
execution.checkpointing:
  mode: AT_LEAST_ONCE
  timeout: 2 min
  tolerable-failed-checkpoints: 3
state.checkpoints.num-retained: 4
state.checkpoints.dir: s3://bucket/ckpts
state.savepoints.dir: file:///var/weir/savepoints
`,
      'test.yaml',
    );
    assert.deepEqual(c.checkpoint, {
      intervalMs: 10_000,
      mode: 'AT_LEAST_ONCE',
      timeoutMs: 120_000,
      tolerableFailedCheckpoints: 3,
      retainedCheckpoints: 4,
      storage: 's3://bucket/ckpts',
    });
    assert.equal(c.checkpointDir, 's3://bucket/ckpts');
    assert.equal(c.savepointDir, 'file:///var/weir/savepoints');
    assert.equal(parseDuration(250, 'k'), 250);
    assert.equal(parseDuration('1.5 s', 'k'), 1500);
  });

  test('an unknown key or a bad value names the key and the expected form', () => {
    assert.throws(
      () => parseClusterConfig('execution.checkpointing.intervall: 5 s', 'c.yaml'),
      /Unknown configuration key 'execution.checkpointing.intervall' in c\.yaml/,
    );
    assert.throws(
      () => parseClusterConfig('execution.checkpointing.mode: SOMETIMES', 'c.yaml'),
      /'execution.checkpointing.mode'.*EXACTLY_ONCE or AT_LEAST_ONCE/,
    );
    assert.throws(
      () => parseClusterConfig('execution.checkpointing.interval: soon', 'c.yaml'),
      /'execution.checkpointing.interval'.*duration/,
    );
    assert.throws(
      () => parseClusterConfig('state.checkpoints.dir: /tmp/x', 'c.yaml'),
      /file:\/\/\/path or s3:\/\/bucket\/prefix/,
    );
    assert.throws(
      () => parseClusterConfig('a: [1, 2', 'c.yaml'),
      /Cannot parse the configuration file c\.yaml/,
    );
  });

  test('a cluster started with a configuration file checkpoints jobs that set nothing; job settings win', async () => {
    const work = tempDir();
    const ckpts = path.join(work, 'ckpts');
    const file = path.join(work, 'weir.yaml');
    writeFileSync(
      file,
      `execution.checkpointing.interval: 150 ms\nstate.checkpoints.num-retained: 2\nstate.checkpoints.dir: file://${ckpts}\n`,
    );
    const bad = await weir(['cluster', 'start', '--port', '0', '--config', path.join(ROOT, 'package.json')]);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /Unknown configuration key/);
    const cluster = await new TestCluster({ taskManagers: 1, slots: 2, extra: ['--config', file] }).start();
    const client = await ClusterClient.connect(cluster.address);
    try {
      const r = await cluster.run([
        'run',
        path.join(ROOT, 'test/jobs/unbounded.ts'),
        '--detached',
        '--',
        '2',
      ]);
      const jobId = /submitted with id (\w+)/.exec(r.stdout)![1]!;
      const s = await (async () => {
        for (let i = 0; i < 150; i++) {
          const st = await client.checkpoints(jobId);
          if ((st.counts?.completed ?? 0) >= 4) return st;
          await new Promise((res) => setTimeout(res, 100));
        }
        throw new Error('no checkpoints from the configuration file');
      })();
      assert.equal((s as { settings?: { intervalMs: number } }).settings?.intervalMs, 150);
      assert.ok(existsSync(path.join(ckpts, jobId)));
      assert.ok(readdirSync(path.join(ckpts, jobId)).length <= 3);
      await weir(['cancel', jobId, '--jobmanager', cluster.address]);

      const own = await cluster.run([
        'run',
        path.join(ROOT, 'test/jobs/checkpointed-count.ts'),
        '--detached',
        '--',
        '400',
        '3',
      ]);
      const ownId = /submitted with id (\w+)/.exec(own.stdout)![1]!;
      for (let i = 0; i < 100 && ((await client.checkpoints(ownId)).counts?.completed ?? 0) < 1; i++)
        await new Promise((res) => setTimeout(res, 100));
      const settings = (
        (await client.checkpoints(ownId)) as {
          settings?: { intervalMs: number; retainedCheckpoints: number; storage: string };
        }
      ).settings!;
      assert.equal(settings.intervalMs, 400);
      assert.equal(settings.retainedCheckpoints, 3);
      assert.equal(settings.storage, `file://${ckpts}`, 'what the job did not set comes from the file');
      await weir(['cancel', ownId, '--jobmanager', cluster.address]);
    } finally {
      client.close();
      await cluster.stop();
    }
  });

  test('the log level reaches the child processes of `weir cluster start` from the environment and from -D', async () => {
    /** pino levels of the lines in a process's log */
    const levels = (cluster: TestCluster, name: string): number[] =>
      readFileSync(path.join(cluster.logDir(), `${name}.log`), 'utf8')
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => (JSON.parse(l) as { level: number }).level);
    const env = { WEIR_LOG_LEVEL: 'error' };
    const quiet = await new TestCluster({ taskManagers: 1, slots: 1, env }).start();
    const flagged = await new TestCluster({
      taskManagers: 1,
      slots: 1,
      env,
      extra: ['-D', 'log.level=info'],
    }).start();
    try {
      // both processes log at info (30) when they start; error (50) hides that, and -D wins over the environment
      for (const name of ['jobmanager', 'taskmanager-1']) {
        assert.deepEqual(
          levels(quiet, name).filter((l) => l < 50),
          [],
          `${name} logged below error`,
        );
        assert.ok(levels(flagged, name).includes(30), `${name} logged at info`);
      }
    } finally {
      await quiet.stop();
      await flagged.stop();
    }
  });
});
