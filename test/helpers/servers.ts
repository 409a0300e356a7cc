import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chownSync, existsSync, mkdirSync, readdirSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { freePort, tempDir } from './cli.js';

/** A server process the test started; `stop` ends it (SIGTERM, then SIGKILL). */
export interface TestServer {
  port: number;
  url: string;
  child: ChildProcess;
  stop(): Promise<void>;
  /** kill -9 and start again on the same port and data directory */
  restart(): Promise<void>;
}

async function waitForPort(port: number, what: string, log: () => string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, '127.0.0.1');
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`${what} did not listen on ${port}: ${log()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise<void>((resolve) => {
    const t = setTimeout(() => child.kill('SIGKILL'), 10_000);
    child.once('exit', () => {
      clearTimeout(t);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

const NATS_BIN = ['/usr/sbin/nats-server', '/usr/bin/nats-server'].find((p) => existsSync(p));
const PG_ROOT = '/usr/lib/postgresql';
/** the newest installed PostgreSQL's bin directory (Debian installs each major version apart) */
const PG_BIN = existsSync(PG_ROOT)
  ? readdirSync(PG_ROOT)
      .filter((v) => existsSync(path.join(PG_ROOT, v, 'bin', 'postgres')))
      .sort((a, b) => Number(b) - Number(a))
      .map((v) => path.join(PG_ROOT, v, 'bin'))[0]
  : undefined;

/** Why the servers' tests cannot run here, or undefined when they can. */
export function missingServers(): string | undefined {
  if (!NATS_BIN) return 'nats-server is not installed (Debian package nats-server; .ci/run installs it)';
  if (!PG_BIN) return 'PostgreSQL is not installed (Debian package postgresql; .ci/run installs it)';
  return undefined;
}

/** `nats-server -js` on a free port with its store in a temp dir. */
export async function startNats(): Promise<TestServer> {
  const dir = tempDir('weir-nats-');
  const port = await freePort();
  let out = '';
  const launch = (): ChildProcess => {
    const child = spawn(NATS_BIN!, ['-js', '-a', '127.0.0.1', '-p', String(port), '-sd', dir], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    return child;
  };
  const server: TestServer = {
    port,
    url: `nats://127.0.0.1:${port}`,
    child: launch(),
    stop: () => stopChild(server.child),
    restart: async () => {
      server.child.kill('SIGKILL');
      await new Promise((r) => server.child.once('exit', r));
      server.child = launch();
      await waitForPort(port, 'nats-server', () => out);
    },
  };
  await waitForPort(port, 'nats-server', () => out);
  return server;
}

/** The user PostgreSQL runs as: it refuses root. */
const PG_USER = 'nobody';

/**
 * A PostgreSQL cluster of its own (initdb in a temp dir, run as an unprivileged user), trust
 * authentication for user `weir`, database `weir`, on a free port.
 */
export async function startPostgres(opts: { maxPreparedTransactions?: number } = {}): Promise<TestServer> {
  const dir = tempDir('weir-pg-');
  const data = path.join(dir, 'data');
  mkdirSync(data);
  const asRoot = process.getuid?.() === 0;
  if (asRoot) {
    chownSync(dir, uidOf(PG_USER), 0);
    chownSync(data, uidOf(PG_USER), 0);
  }
  // as root the server runs as PG_USER (the process itself, so a kill -9 reaches the postmaster)
  const as = asRoot ? { uid: uidOf(PG_USER), gid: gidOf(PG_USER) } : {};
  const run = (cmd: string, args: string[]): ReturnType<typeof spawnSync> =>
    spawnSync(cmd, args, { encoding: 'utf8', cwd: dir, ...as });
  const init = run(path.join(PG_BIN!, 'initdb'), [
    '-D',
    data,
    '-A',
    'trust',
    '-U',
    'weir',
    '--no-locale',
    '-E',
    'UTF8',
  ]);
  if (init.status !== 0) throw new Error(`initdb failed: ${String(init.stderr)}`);
  const port = await freePort();
  let out = '';
  const args = [
    '-D',
    data,
    '-p',
    String(port),
    '-k',
    dir,
    '-c',
    'listen_addresses=127.0.0.1',
    '-c',
    `max_prepared_transactions=${opts.maxPreparedTransactions ?? 64}`,
    '-c',
    'fsync=off',
    '-c',
    'synchronous_commit=off',
    '-c',
    'full_page_writes=off',
  ];
  const launch = (): ChildProcess => {
    const child = spawn(path.join(PG_BIN!, 'postgres'), args, {
      stdio: ['ignore', 'pipe', 'pipe'],
      cwd: dir,
      ...as,
    });
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    return child;
  };
  const ready = async (): Promise<void> => {
    await waitForPort(port, 'postgres', () => out);
    // accepting connections only after recovery: createdb retries until it can
    for (let i = 0; ; i++) {
      const r = spawnSync(
        path.join(PG_BIN!, 'psql'),
        ['-h', '127.0.0.1', '-p', String(port), '-U', 'weir', '-d', 'postgres', '-c', 'select 1'],
        {
          encoding: 'utf8',
        },
      );
      if (r.status === 0) return;
      if (i > 100) throw new Error(`postgres not ready: ${r.stderr} ${out}`);
      await new Promise((res) => setTimeout(res, 100));
    }
  };
  const server: TestServer = {
    port,
    url: `postgres://weir@127.0.0.1:${port}/weir`,
    child: launch(),
    stop: () => stopChild(server.child),
    restart: async () => {
      // a crash: the postmaster's backends notice and exit; startup runs crash recovery
      server.child.kill('SIGKILL');
      await new Promise((r) => server.child.once('exit', r));
      await new Promise((r) => setTimeout(r, 1_000));
      server.child = launch();
      await ready();
    },
  };
  await ready();
  const created = spawnSync(
    path.join(PG_BIN!, 'createdb'),
    ['-h', '127.0.0.1', '-p', String(port), '-U', 'weir', 'weir'],
    {
      encoding: 'utf8',
    },
  );
  if (created.status !== 0) throw new Error(`createdb failed: ${created.stderr}`);
  return server;
}

function gidOf(user: string): number {
  const r = spawnSync('id', ['-g', user], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`no user '${user}' to run PostgreSQL as`);
  return Number(r.stdout.trim());
}

function uidOf(user: string): number {
  const r = spawnSync('id', ['-u', user], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`no user '${user}' to run PostgreSQL as`);
  return Number(r.stdout.trim());
}

export { tempDir };
