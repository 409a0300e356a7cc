import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import {
  CONFIG_OPTIONS,
  envVarForKey,
  knownEnvVars,
  optionForEnvVar,
  parseConfigEnv,
  parseDefinitions,
  resolveConfig,
  s3ClientConfig,
} from '../../packages/core/src/index.js';
import { ROOT, WEIR, freePort, tempDir, until, weir } from '../helpers/cli.js';

describe('configuration layering: flags > WEIR_* environment > file > defaults', () => {
  test('every key has one systematic variable and back', () => {
    assert.equal(envVarForKey('state.checkpoints.dir'), 'WEIR_STATE_CHECKPOINTS_DIR');
    assert.equal(
      envVarForKey('restart-strategy.fixed-delay.attempts'),
      'WEIR_RESTART_STRATEGY_FIXED_DELAY_ATTEMPTS',
    );
    for (const opt of CONFIG_OPTIONS) assert.equal(optionForEnvVar(envVarForKey(opt.key))?.key, opt.key);
    // the older names still work
    for (const [name, key] of [
      ['WEIR_S3_ENDPOINT', 's3.endpoint'],
      ['WEIR_S3_PATH_STYLE', 's3.path-style-access'],
      ['AWS_ACCESS_KEY_ID', 's3.access-key'],
      ['AWS_SECRET_ACCESS_KEY', 's3.secret-key'],
      ['WEIR_S3_SECRET_KEY', 's3.secret-key'],
      ['WEIR_AUTH_TOKEN', 'security.auth.token'],
      ['WEIR_LOG_LEVEL', 'log.level'],
    ]) {
      assert.equal(optionForEnvVar(name!)?.key, key, name);
    }
    assert.ok(knownEnvVars().has('WEIR_JOBMANAGER'));
  });

  test('precedence, with the source of every value', () => {
    const dir = tempDir();
    const file = path.join(dir, 'weir.yaml');
    writeFileSync(
      file,
      'heartbeat:\n  interval: 2 s\n  timeout: 20 s\ntaskmanager.numberOfTaskSlots: 3\ns3.endpoint: http://file:9000\nsecurity.ssl.ca: certs/ca.pem\n',
    );
    const cfg = resolveConfig({
      file,
      env: {
        WEIR_HEARTBEAT_TIMEOUT: '30 s',
        WEIR_TASKMANAGER_NUMBEROFTASKSLOTS: '4',
        WEIR_S3_ENDPOINT: 'http://env:9000',
        AWS_REGION: 'eu-west-1',
        HOME: '/x',
      },
      flags: [
        { key: 'taskmanager.numberOfTaskSlots', value: 5, flag: '--slots' },
        ...parseDefinitions(['log.level=debug']),
      ],
    });
    assert.deepEqual(
      [cfg.get('heartbeat.interval'), cfg.source('heartbeat.interval')],
      [2000, `file ${file}`],
    );
    assert.deepEqual(
      [cfg.get('heartbeat.timeout'), cfg.source('heartbeat.timeout')],
      [30_000, 'env WEIR_HEARTBEAT_TIMEOUT'],
    );
    assert.deepEqual(
      [cfg.get('taskmanager.numberOfTaskSlots'), cfg.source('taskmanager.numberOfTaskSlots')],
      [5, 'flag --slots'],
    );
    assert.deepEqual([cfg.get('log.level'), cfg.source('log.level')], ['debug', 'flag -D log.level']);
    assert.deepEqual([cfg.get('jobmanager.rpc.port'), cfg.source('jobmanager.rpc.port')], [6123, 'default']);
    assert.deepEqual([cfg.get('s3.region'), cfg.source('s3.region')], ['eu-west-1', 'env AWS_REGION']);
    assert.equal(
      cfg.get('security.ssl.ca'),
      path.join(dir, 'certs/ca.pem'),
      'paths in the file are relative to the file',
    );
    assert.equal(cfg.settings['heartbeat.timeout'], 30_000);
    assert.equal(cfg.settings['s3.endpoint'], 'http://env:9000');
    // the systematic name wins over its alias
    assert.equal(
      resolveConfig({ env: { WEIR_S3_PATH_STYLE_ACCESS: 'false', WEIR_S3_PATH_STYLE: 'true' } }).get(
        's3.path-style-access',
      ),
      false,
    );
    assert.equal(
      s3ClientConfig(
        resolveConfig({ env: { WEIR_S3_ENDPOINT: 'http://m:9000', WEIR_S3_PATH_STYLE: 'true' } }).settings,
      ).forcePathStyle,
      true,
    );
  });

  test('an unknown variable, key or flag, or a bad value, is an error naming it and the expected form', () => {
    assert.throws(
      () => parseConfigEnv({ WEIR_STATE_CHECKPOINT_DIR: 's3://b/c' }),
      /Unknown environment variable WEIR_STATE_CHECKPOINT_DIR.*WEIR_STATE_CHECKPOINTS_DIR/,
    );
    assert.throws(
      () => parseConfigEnv({ WEIR_S3_ENDPIONT: 'http://x' }),
      /WEIR_S3_ENDPIONT.*WEIR_S3_ENDPOINT/,
    );
    assert.throws(
      () => parseConfigEnv({ WEIR_HEARTBEAT_INTERVAL: 'soon' }),
      /'WEIR_HEARTBEAT_INTERVAL'.*duration.*heartbeat\.interval/,
    );
    assert.throws(
      () => parseConfigEnv({ WEIR_JOBMANAGER_RPC_PORT: '70000' }),
      /'WEIR_JOBMANAGER_RPC_PORT'.*integer from 0 to 65535/,
    );
    assert.throws(
      () => parseConfigEnv({ WEIR_LOG_LEVEL: 'loud' }),
      /'WEIR_LOG_LEVEL'.*fatal or error or warn or info or debug or trace or silent/,
    );
    assert.throws(() => parseConfigEnv({ WEIR_S3_ENDPOINT: 'minio:9000' }), /'WEIR_S3_ENDPOINT'.*http/);
    assert.throws(
      () => parseDefinitions(['heartbeat.intervall=1s']),
      /Unknown configuration key 'heartbeat\.intervall'.*did you mean 'heartbeat\.interval'/,
    );
    assert.throws(() => parseDefinitions(['novalue']), /expected -D key=value/);
    assert.throws(
      () =>
        resolveConfig({
          env: {},
          flags: [{ key: 'taskmanager.numberOfTaskSlots', value: 0, flag: '--slots' }],
        }),
      /'--slots'.*integer from 1 to 1024/,
    );
    // variables outside weir's namespaces are not ours to judge
    assert.equal(parseConfigEnv({ WEIR_SOMETHING_ELSE: 'x', WEIR_JOBMANAGER: 'h:1' }).size, 0);
  });

  test('weir config shows every key, masks secrets and names sources; a bad variable fails the command', async () => {
    const r = await weir(['config', '-D', 'slot.request.timeout=5 s'], {
      env: { WEIR_S3_SECRET_KEY: 'very-secret-value', WEIR_STATE_CHECKPOINTS_DIR: 's3://weir/checkpoints' },
    });
    assert.equal(r.code, 0, r.stderr);
    for (const opt of CONFIG_OPTIONS)
      assert.match(r.stdout, new RegExp(`^${opt.key.replace(/\./g, '\\.')} `, 'm'));
    assert.match(r.stdout, /s3\.secret-key +\*\*\* +env WEIR_S3_SECRET_KEY/);
    assert.match(
      r.stdout,
      /state\.checkpoints\.dir +s3:\/\/weir\/checkpoints +env WEIR_STATE_CHECKPOINTS_DIR/,
    );
    assert.match(r.stdout, /slot\.request\.timeout +5000 +flag -D slot\.request\.timeout/);
    assert.ok(!r.stdout.includes('very-secret-value'));
    const bad = await weir(['jobmanager', '--port', '0'], {
      env: { WEIR_RESTART_STRATEGY_TYPE: 'sometimes' },
    });
    assert.equal(bad.code, 1);
    assert.match(
      bad.stderr,
      /'WEIR_RESTART_STRATEGY_TYPE'.*none, fixed-delay, exponential-delay or failure-rate/,
    );
  });
});

function spawnWeir(args: string[], env: Record<string, string> = {}): ChildProcess {
  return spawn(process.execPath, [WEIR, ...args], {
    cwd: ROOT,
    stdio: 'ignore',
    env: { ...process.env, ...env },
  });
}

async function health(
  address: string,
  env: Record<string, string> = {},
): Promise<{ code: number | null; out: string }> {
  const r = await weir(['health', '--address', address, '--timeout', '2000'], { env, timeoutMs: 20_000 });
  return { code: r.code, out: r.stdout + r.stderr };
}

function kill(c: ChildProcess | undefined): Promise<void> {
  if (!c || c.exitCode !== null || c.signalCode !== null) return Promise.resolve();
  return new Promise((r) => {
    c.once('exit', () => r());
    c.kill('SIGKILL');
  });
}

describe('gRPC health service', () => {
  test(
    'JobManager SERVING when up; TaskManager SERVING only while registered; no token needed',
    { timeout: 90_000 },
    async () => {
      const work = tempDir();
      const jmPort = await freePort();
      const tmPort = await freePort();
      const token = 'a-token-for-the-health-test-0123456789';
      let jm: ChildProcess | undefined;
      let tm: ChildProcess | undefined;
      try {
        // the TaskManager starts first: it serves, but not SERVING, until it has registered
        tm = spawnWeir([
          'taskmanager',
          '--jobmanager',
          `127.0.0.1:${jmPort}`,
          '--port',
          String(tmPort),
          '--work-dir',
          path.join(work, 'tm'),
        ]);
        await until(
          'the TaskManager answering NOT_SERVING',
          async () => {
            const h = await health(`127.0.0.1:${tmPort}`);
            return h.code === 1 && /NOT_SERVING/.test(h.out) ? true : undefined;
          },
          20_000,
        );
        assert.equal(
          (await health(`127.0.0.1:${jmPort}`)).code,
          1,
          'nothing listens on the JobManager port yet',
        );
        jm = spawnWeir(
          [
            'jobmanager',
            '--port',
            String(jmPort),
            '--no-job-store',
            '--checkpoint-dir',
            path.join(work, 'ckpt'),
          ],
          { WEIR_AUTH_TOKEN: token },
        );
        await until(
          'the JobManager SERVING',
          async () => ((await health(`127.0.0.1:${jmPort}`)).code === 0 ? true : undefined),
          20_000,
        );
        await until(
          'the TaskManager SERVING once registered',
          async () => ((await health(`127.0.0.1:${tmPort}`)).code === 0 ? true : undefined),
          20_000,
        );
        // the Dispatcher needs the token; health does not
        const list = await weir(['list', '--jobmanager', `127.0.0.1:${jmPort}`]);
        assert.equal(list.code, 1);
        assert.match(list.stderr, /bearer token/);
        await kill(jm);
        await until(
          'the TaskManager NOT_SERVING after losing the JobManager',
          async () => {
            const h = await health(`127.0.0.1:${tmPort}`);
            return h.code === 1 && /NOT_SERVING/.test(h.out) ? true : undefined;
          },
          20_000,
        );
      } finally {
        await kill(tm);
        await kill(jm);
      }
    },
  );
});
