// The docker-compose topology as real processes on separate hosts, without a container engine:
// Linux network namespaces joined by veth pairs to a bridge (itself in a namespace of its own,
// so the machine's own network is never touched). The S3 server (s3rver standing in for
// MinIO), the JobManager, two TaskManagers and the client each get a namespace and an address,
// and the weir processes get the environment of docker-compose.yml, with the compose service
// names replaced by these addresses and MinIO's credentials by s3rver's. Security is the
// compose file's: its one-shot certs command makes the CA, the per-service certificates and
// the token (into a directory standing in for the weir-certs volume), every connection is
// mutual TLS, and the client uses the CA and the token. The word count runs
// with checkpoints to s3://, one TaskManager is killed with SIGKILL and started again (as the
// restart policy does), and the committed output must be exact.
//
// Needs root and iproute2 (`ip netns`); elsewhere it skips and says why.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, readdirSync, rmSync, symlinkSync } from 'node:fs';
import path from 'node:path';
import { parse } from 'yaml';
import { corpus } from '../../examples/corpus.js';
import { ROOT, WEIR, tempDir } from '../helpers/cli.js';
import { NetnsNetwork, firstMessage, killHard, netnsUnavailable } from '../helpers/netns.js';

const LINES = 12_000;
const LINES_PER_SECOND = 1_000;
const HOSTS = ['s3', 'jm', 'tm1', 'tm2', 'cli'] as const;
type Host = (typeof HOSTS)[number];

function spawnIn(
  net: NetnsNetwork,
  host: Host,
  args: string[],
  opts: { env?: Record<string, string>; cwd?: string; log: string; ipc?: boolean },
): ChildProcess {
  return net.spawn(host, args, opts);
}

function ready(child: ChildProcess, what: string, log: string): Promise<unknown> {
  return firstMessage(child, what, log);
}

/** `weir ...` in a host's namespace (the client's by default), to the end. */
function weirIn(
  net: NetnsNetwork,
  args: string[],
  log: string,
  timeoutMs = 20_000,
  host: Host = 'cli',
  env: Record<string, string> = {},
): Promise<{ code: number | null; out: string }> {
  const child = spawnIn(net, host, [WEIR, ...args], { log, env });
  const start = readFileSync(log, 'utf8').length;
  return new Promise((resolve) => {
    const t = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('exit', (code) => {
      clearTimeout(t);
      resolve({ code, out: readFileSync(log, 'utf8').slice(start) });
    });
  });
}

type ComposeService = { environment?: Record<string, string>; command?: string[] };

function composeService(service: string): ComposeService {
  const doc = parse(readFileSync(path.join(ROOT, 'docker-compose.yml'), 'utf8'), { merge: true }) as {
    services: Record<string, ComposeService>;
  };
  return doc.services[service]!;
}

/** The compose certificates' directory (the weir-certs volume) inside the containers. */
const CERTS_MOUNT = '/etc/weir/certs';

/** The environment docker-compose.yml gives a service, with its defaults. */
function composeEnv(service: string): Record<string, string> {
  return Object.fromEntries(
    Object.entries(composeService(service).environment!).map(([k, v]) => [
      k,
      String(v).replace(/\$\{(\w+):-([^}]*)\}/g, (_, _n, d: string) => d),
    ]),
  );
}

const skip = netnsUnavailable();

test(
  'the compose topology on separate hosts (network namespaces): word count, kill -9 a TaskManager, exact result',
  { skip: skip ?? false, timeout: 90_000 },
  async (t) => {
    const net = new NetnsNetwork(HOSTS, '10.213.7');
    const work = tempDir('weir-netns-');
    const logs = path.join(work, 'logs');
    mkdirSync(logs);
    const out = path.join(work, 'out');
    mkdirSync(out);
    const children: ChildProcess[] = [];
    const log = (n: string): string => path.join(logs, `${n}.log`);
    try {
      net.create();
      // s3rver stands in for MinIO; it knows the credentials S3RVER/S3RVER
      mkdirSync(path.join(work, 's3'));
      mkdirSync(path.join(work, 'jm'));
      const s3 = spawnIn(
        net,
        's3',
        [path.join(ROOT, 'test/helpers/s3-server-main.mjs'), path.join(work, 's3'), net.addr('s3'), '9000'],
        { log: log('s3'), ipc: true },
      );
      children.push(s3);
      await ready(s3, 's3rver', log('s3'));

      // the certs service's command, into a directory standing in for the weir-certs volume; the
      // JobManager's address stands in for its service name `jobmanager` in its certificate
      const certs = path.join(work, 'certs');
      const certsCommand = composeService('certs').command!.map((a) => (a === CERTS_MOUNT ? certs : a));
      assert.deepEqual(certsCommand.slice(0, 2), ['cert', 'create']);
      const made = await weirIn(
        net,
        [...certsCommand, '--hostname', net.addr('jm')],
        log('certs'),
        20_000,
        'jm',
      );
      assert.equal(made.code, 0, made.out);

      // the compose file's settings; service names become addresses (no Docker DNS here)
      const swap = (env: Record<string, string>): Record<string, string> => ({
        ...Object.fromEntries(Object.entries(env).map(([k, v]) => [k, v.replace(CERTS_MOUNT, certs)])),
        WEIR_JOBMANAGER_RPC_ADDRESS: net.addr('jm'),
        WEIR_S3_ENDPOINT: env.WEIR_S3_ENDPOINT!.replace('minio', net.addr('s3')),
        WEIR_S3_ACCESS_KEY: 'S3RVER',
        WEIR_S3_SECRET_KEY: 'S3RVER',
      });
      const jmEnv = swap(composeEnv('jobmanager'));
      const tmEnv = swap(composeEnv('taskmanager'));
      assert.equal(jmEnv.WEIR_SECURITY_SSL_ENABLED, 'true', 'compose turns TLS on');
      assert.equal(jmEnv.WEIR_SECURITY_INSECURE, undefined, 'compose is not insecure');
      // what a client copies out of the volume: the CA and the token
      const clientTls = ['--ssl-ca', path.join(certs, 'ca.pem'), '--token-file', path.join(certs, 'token')];
      assert.equal(
        tmEnv.WEIR_TASKMANAGER_HOST,
        undefined,
        'TaskManagers advertise their own address, as in compose',
      );

      const jm = spawnIn(net, 'jm', [WEIR, 'jobmanager'], {
        env: jmEnv,
        cwd: path.join(work, 'jm'),
        log: log('jobmanager'),
        ipc: true,
      });
      children.push(jm);
      await ready(jm, 'the JobManager', log('jobmanager'));

      // each TaskManager has its own working directory (the container's /var/lib/weir), and the
      // job's relative paths resolve against tm-cwd (`--working-dir /var/lib/weir` in compose),
      // whose out/ is one directory all TaskManagers share (the compose volume)
      mkdirSync(path.join(work, 'tm-cwd'));
      symlinkSync(out, path.join(work, 'tm-cwd', 'out'));
      const tms = new Map<string, ChildProcess>();
      const startTm = async (host: 'tm1' | 'tm2'): Promise<void> => {
        const cwd = path.join(work, host);
        mkdirSync(cwd, { recursive: true });
        const c = spawnIn(net, host, [WEIR, 'taskmanager'], { env: tmEnv, cwd, log: log(host), ipc: true });
        children.push(c);
        tms.set(host, c);
        const m = (await ready(c, `TaskManager ${host}`, log(host))) as { address: string };
        assert.equal(
          m.address,
          `${net.addr(host)}:6122`,
          'a TaskManager bound to 0.0.0.0 advertises its own host address',
        );
      };
      await Promise.all([startTm('tm1'), startTm('tm2')]);

      // health, as the compose health checks ask it: inside each container, over TLS to 127.0.0.1
      for (const [host, port, env] of [
        ['jm', 6123, jmEnv],
        ['tm1', 6122, tmEnv],
        ['tm2', 6122, tmEnv],
      ] as const) {
        const h = await weirIn(
          net,
          ['health', '--address', `127.0.0.1:${port}`],
          log('cli'),
          20_000,
          host,
          env,
        );
        assert.equal(h.code, 0, `${host} health: ${h.out}`);
      }
      // from another host, plain text gets nowhere, and the Dispatcher wants the token
      const jmAddress = `${net.addr('jm')}:6123`;
      const plain = await weirIn(net, ['list', '--jobmanager', jmAddress], log('cli'), 20_000);
      assert.notEqual(plain.code, 0, plain.out);
      const noToken = await weirIn(
        net,
        ['list', '--jobmanager', jmAddress, '--ssl-ca', path.join(certs, 'ca.pem')],
        log('cli'),
      );
      assert.match(noToken.out, /requires a bearer token/);

      const runLog = log('run');
      const run = spawnIn(
        net,
        'cli',
        [
          WEIR,
          'run',
          path.join(ROOT, 'examples/wordcount.ts'),
          '--jobmanager',
          jmAddress,
          ...clientTls,
          '--working-dir',
          path.join(work, 'tm-cwd'),
          '--',
          String(LINES),
          String(LINES_PER_SECOND),
        ],
        { log: runLog },
      );
      children.push(run);
      const finished = new Promise<number | null>((r) => run.once('exit', (code) => r(code)));

      // a completed checkpoint on S3 first, so recovery restores state rather than starting over
      let jobId = '';
      const deadline = Date.now() + 30_000;
      for (;;) {
        if (Date.now() > deadline)
          throw new Error(`no completed checkpoint within 30 s; run log:\n${readFileSync(runLog, 'utf8')}`);
        jobId ||= /submitted with id (\w+)/.exec(readFileSync(runLog, 'utf8'))?.[1] ?? '';
        if (jobId) {
          const c = await weirIn(
            net,
            ['checkpoints', jobId, '--json', '--jobmanager', jmAddress, ...clientTls],
            log('cli'),
          );
          const m = /"completed":\s*(\d+)/.exec(c.out);
          if (m && Number(m[1]) >= 1) break;
        }
        await new Promise((r) => setTimeout(r, 300));
      }
      t.diagnostic(`job ${jobId}: a checkpoint completed; kill -9 tm1`);
      await killHard(tms.get('tm1'));
      // the restart policy brings it back
      await new Promise((r) => setTimeout(r, 500));
      await startTm('tm1');

      const code = await Promise.race([
        finished,
        new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), 45_000).unref()),
      ]);
      assert.equal(
        code,
        0,
        `weir run: ${readFileSync(runLog, 'utf8')}\nJobManager log:\n${readFileSync(log('jobmanager'), 'utf8').slice(-3000)}`,
      );
      const status = await weirIn(
        net,
        ['status', jobId, '--json', '--jobmanager', jmAddress, ...clientTls],
        log('cli'),
      );
      assert.match(status.out, /"restarts":\s*\[\s*\{/, 'the job restarted after the kill');

      // exactly once: per word, the committed running counts are 1..n with no gap or repeat
      const expected = new Map<string, number>();
      for (const line of corpus(LINES))
        for (const w of line.split(/\s+/)) expected.set(w, (expected.get(w) ?? 0) + 1);
      const seen = new Map<string, number[]>();
      const dir = path.join(out, 'wordcount');
      for (const f of readdirSync(dir).filter((n) => n.startsWith('part-'))) {
        for (const line of readFileSync(path.join(dir, f), 'utf8').split('\n')) {
          if (!line) continue;
          const [w, c] = JSON.parse(line) as [string, number];
          let l = seen.get(w);
          if (!l) seen.set(w, (l = []));
          l.push(c);
        }
      }
      assert.equal(seen.size, expected.size);
      for (const [w, n] of expected) {
        assert.deepEqual(
          seen.get(w)!.sort((a, b) => a - b),
          Array.from({ length: n }, (_, i) => i + 1),
          `word ${w}`,
        );
      }
      // the checkpoints went to the S3 server on its own host
      assert.ok(readdirSync(path.join(work, 's3')).includes('weir'));
    } finally {
      await Promise.all(children.map(killHard));
      await net.destroy();
      rmSync(work, { recursive: true, force: true });
    }
  },
);
