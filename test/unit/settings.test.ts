import { getHeapStatistics } from 'node:v8';
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { StreamExecutionEnvironment } from '../../packages/api/src/index.js';
import {
  CONFIG_OPTIONS,
  DEFAULT_MAX_MESSAGE_BYTES,
  buildJobGraph,
  createClient,
  createLogger,
  defaultSettings,
  dispatcherProto,
  fileStorageUri,
  resolveConfig,
  s3ClientConfig,
  unary,
  type JobDetails__Output,
} from '../../packages/core/src/index.js';
import { JobManager } from '../../packages/jobmanager/src/job-manager.js';
import { TaskExecutor } from '../../packages/taskmanager/src/task-executor.js';
import { ROOT, tempDir, until } from '../helpers/cli.js';

/** Settings flow from the option registry to the runtime classes with no second copy of a default. */
describe('the option registry is the only place a default is written', () => {
  const defaults = defaultSettings();

  test('defaultSettings() is the registry: every key, each with its registry default', () => {
    assert.deepEqual(Object.keys(defaults).sort(), CONFIG_OPTIONS.map((o) => o.key).sort());
    for (const opt of CONFIG_OPTIONS) assert.deepEqual(defaults[opt.key], opt.default, opt.key);
    // what a process resolves from nothing is the same
    assert.deepEqual(resolveConfig({ env: {} }).settings, defaults);
  });

  test('a JobManager and a TaskExecutor built from the defaults use the registry defaults', async () => {
    const work = tempDir('weir-settings-');
    const jm = new JobManager({
      host: '127.0.0.1',
      port: 0,
      settings: defaults,
      checkpointStorage: fileStorageUri(path.join(work, 'checkpoints')),
      savepointDir: path.join(work, 'savepoints'),
    });
    assert.equal(jm.rm.heartbeatIntervalMs, 1_000);
    assert.equal(jm.rm.heartbeatTimeoutMs, 10_000);
    assert.equal(jm.log.level, 'info');
    const tm = new TaskExecutor({
      jobManagerAddress: '127.0.0.1:1',
      slots: 1,
      host: '127.0.0.1',
      port: 0,
      workDir: path.join(work, 'work'),
      stateDir: path.join(work, 'state'),
      settings: defaults,
    });
    // managed memory: the registry's fraction of the heap limit, sizes of a database derived from it
    assert.equal(defaults['taskmanager.memory.managed.fraction'], 0.4);
    assert.equal(
      tm.rocksdb.memory.perSlot,
      Math.floor(getHeapStatistics().heap_size_limit * defaults['taskmanager.memory.managed.fraction']),
    );
    assert.equal(tm.rocksdb.memory.blockCacheSize, undefined);
    assert.equal(tm.rocksdb.memory.writeBufferSize, undefined);
    assert.equal(tm.rocksdb.memory.readCacheSize, undefined);
    assert.equal(tm.log.level, 'info');
    // the same numbers are the registry's, so changing one there changes the runtime
    assert.equal(defaults['heartbeat.interval'], jm.rm.heartbeatIntervalMs);
    assert.equal(defaults['heartbeat.timeout'], jm.rm.heartbeatTimeoutMs);
    assert.equal(createLogger('x').level, defaults['log.level']);
    assert.equal(DEFAULT_MAX_MESSAGE_BYTES, defaults['rpc.max-message-size']);
    assert.deepEqual(s3ClientConfig(defaults), {
      region: 'us-east-1',
      forcePathStyle: false,
      maxAttempts: 2,
    });
    await jm.stop();
  });

  test('settings other than the defaults reach the runtime: log level, heartbeats, the slot request timeout of a job', async () => {
    const work = tempDir('weir-settings-');
    const settings = resolveConfig({
      env: { WEIR_LOG_LEVEL: 'warn', WEIR_HEARTBEAT_INTERVAL: '250 ms', WEIR_SLOT_REQUEST_TIMEOUT: '300 ms' },
    }).settings;
    const jm = new JobManager({
      host: '127.0.0.1',
      port: 0,
      settings,
      checkpointStorage: fileStorageUri(path.join(work, 'checkpoints')),
      savepointDir: path.join(work, 'savepoints'),
    });
    assert.equal(jm.log.level, 'warn');
    assert.equal(jm.rm.heartbeatIntervalMs, 250);
    const port = await jm.start();
    const client = createClient(dispatcherProto.Dispatcher, `127.0.0.1:${port}`);
    try {
      const env = StreamExecutionEnvironment.getExecutionEnvironment();
      env.fromElements(1, 2).sinkTo({ createWriter: () => ({ write: () => {} }) });
      const graph = buildJobGraph(env.getStreamGraph('no-slots'));
      const { jobId } = await unary<{ jobId: string }>(client.SubmitJob.bind(client), {
        jobName: 'no-slots',
        jobGraphJson: JSON.stringify(graph),
        bundle: Buffer.from('unused: no TaskManager ever deploys it'),
        jobContextJson: '{}',
        restorePath: '',
        allowNonRestoredState: false,
      });
      // no TaskManager: the job fails once slot.request.timeout (300 ms, not the 300 s default) has passed
      const details = await until(
        'the job to fail for want of slots',
        async () => {
          const d = await unary<JobDetails__Output>(client.GetJobStatus.bind(client), { jobId });
          return d.status === 'JOB_FAILED' ? d : undefined;
        },
        10_000,
      );
      assert.match(details.failureCause, /^Could not get 1 slots within 0\.3 s/);
    } finally {
      client.close();
      await jm.stop();
    }
  });
});

/**
 * WEIR_* variables are an input layer read once at the process edge; nothing else reads the
 * environment for settings. The edge: resolveConfig/parseConfigEnv (the layer itself), the CLI
 * entry (secrets of the environment, for masking), the CLI's command configuration and the
 * client commands' WEIR_JOBMANAGER, the Kubernetes API address of `weir cert kubernetes-secrets`,
 * and the environment a local cluster hands its processes.
 */
describe('no module outside the process edge reads process.env', () => {
  const EDGE: Record<string, number> = {
    'packages/core/src/config.ts': 2,
    'packages/cli/src/bin/weir.ts': 1,
    'packages/cli/src/config-options.ts': 1,
    'packages/cli/src/connection.ts': 3,
    // `weir cert kubernetes-secrets`: the pod's KUBERNETES_SERVICE_HOST/PORT
    'packages/cli/src/kubernetes-secrets.ts': 1,
    // `weir cluster start`: the environment of the processes it starts (MALLOC_ARENA_MAX for TaskManagers)
    'packages/cli/src/local-cluster.ts': 1,
  };

  function sources(dir: string): string[] {
    return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) return e.name === 'generated' ? [] : sources(p);
      return e.name.endsWith('.ts') ? [p] : [];
    });
  }

  test('process.env appears only in the edge modules, as often as they need it', () => {
    const found: Record<string, number> = {};
    /** settings written into an environment for others to read (`env.WEIR_LOG_LEVEL = ...`) */
    const writes: string[] = [];
    for (const pkg of readdirSync(path.join(ROOT, 'packages'))) {
      const src = path.join(ROOT, 'packages', pkg, 'src');
      let files: string[];
      try {
        files = sources(src);
      } catch {
        continue;
      }
      for (const file of files) {
        // comments may mention the environment; code may not read it
        const code = readFileSync(file, 'utf8')
          .replace(/\/\*[\s\S]*?\*\//g, '')
          .replace(/(^|[^:])\/\/.*$/gm, '$1');
        const n = (
          code.match(/\bprocess\s*(\.\s*env\b|\[\s*['"`]env['"`]\s*\])|\benv\s*:\s*process\b/g) ?? []
        ).length;
        if (n > 0) found[path.relative(ROOT, file)] = n;
        for (const m of code.matchAll(/\benv\s*(\.\s*[A-Za-z_]\w*|\[[^\]]+\])\s*(\?\?)?=(?!=)/g))
          writes.push(`${path.relative(ROOT, file)}: ${m[0]}`);
      }
    }
    assert.deepEqual(found, EDGE);
    assert.deepEqual(writes, [], 'no module hands settings on through an environment');
  });
});
