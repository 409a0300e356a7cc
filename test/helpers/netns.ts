// Hosts of a test as Linux network namespaces: one namespace per host, each with a veth pair to a
// bridge in a namespace of its own, so nothing is added to the machine's own network and every
// address used lives only inside namespaces this helper made. Names carry the pid and a counter,
// so two runs (or a run and the leftovers of a crashed one) never collide. Faults for chaos tests:
// a partition between two hosts (iptables DROP in one host's namespace), packet loss and delay on
// a host's link (tc netem; where the kernel has no netem, iptables' statistic match drops and a
// tbf queue delays). Needs root, iproute2 and, for faults, iptables.
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { ROOT } from './cli.js';

/** Why network namespaces (and the named tools) cannot be used here, or undefined when they can. */
export function netnsUnavailable(tools: Array<'iptables' | 'tc'> = []): string | undefined {
  if (process.platform !== 'linux') return 'network namespaces need Linux';
  if (process.getuid?.() !== 0) return 'creating network namespaces needs root (CI runs as root)';
  if (spawnSync('ip', ['-V']).error) return 'iproute2 (`ip`) is not installed; .ci/run installs it';
  for (const t of tools) {
    const args = t === 'iptables' ? ['--version'] : ['-V'];
    if (spawnSync(t, args).error)
      return `${t} is not installed; .ci/run installs it (Debian package ${t === 'tc' ? 'iproute2' : t})`;
  }
  const probe = `wprobe${process.pid}`;
  const r = spawnSync('ip', ['netns', 'add', probe], { encoding: 'utf8' });
  if (r.status !== 0) return `ip netns add fails here: ${r.stderr.trim()}`;
  try {
    if (tools.includes('iptables')) {
      const x = spawnSync('ip', ['netns', 'exec', probe, 'iptables', '-S'], { encoding: 'utf8' });
      if (x.status !== 0) return `iptables does not work in a network namespace here: ${x.stderr.trim()}`;
    }
  } finally {
    spawnSync('ip', ['netns', 'del', probe]);
  }
  return undefined;
}

let counter = 0;
let netemKnown: boolean | undefined;

/** A set of hosts on one bridge; `destroy` (also run at process exit) removes everything. */
export class NetnsNetwork {
  /** unique per process and instance: namespace and interface names derive from it */
  readonly id = `${(process.pid % 46_656).toString(36)}${(counter++ % 36).toString(36)}`;
  private readonly namespaces: string[] = [];
  private readonly hosts = new Map<string, number>();
  private readonly children = new Set<ChildProcess>();
  private readonly onExit = (): void => this.destroySync();
  /** how the last `degrade` was done: 'netem', or 'iptables+tbf' on kernels without netem */
  degradeMethod: 'netem' | 'iptables+tbf' | undefined;

  /** `subnet` is the first three octets, e.g. '10.200.7'; hosts get .2, .3, ... in order. */
  constructor(
    hostNames: readonly string[],
    private readonly subnet: string,
  ) {
    hostNames.forEach((h, i) => this.hosts.set(h, i + 2));
  }

  ns(host: string): string {
    return `w${this.id}-${host}`;
  }

  addr(host: string): string {
    const n = this.hosts.get(host);
    if (n === undefined)
      throw new Error(`no host ${host} in this network (${[...this.hosts.keys()].join(', ')})`);
    return `${this.subnet}.${n}`;
  }

  /** the host's end of its veth pair */
  dev(host: string): string {
    return `v${this.id}${host}`.slice(0, 15);
  }

  private ip(...args: string[]): void {
    execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  }

  /** Runs a command in a host's namespace; throws with its stderr when it fails. */
  exec(host: string, cmd: string, ...args: string[]): string {
    return execFileSync('ip', ['netns', 'exec', this.ns(host), cmd, ...args], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    });
  }

  create(): this {
    process.once('exit', this.onExit);
    const sw = this.ns('sw');
    this.ip('netns', 'add', sw);
    this.namespaces.push(sw);
    this.ip('-n', sw, 'link', 'add', 'br0', 'type', 'bridge');
    this.ip('-n', sw, 'link', 'set', 'br0', 'up');
    for (const host of this.hosts.keys()) {
      const ns = this.ns(host);
      this.ip('netns', 'add', ns);
      this.namespaces.push(ns);
      const inner = this.dev(host);
      const outer = `b${this.id}${host}`.slice(0, 15);
      this.ip('link', 'add', inner, 'type', 'veth', 'peer', 'name', outer);
      this.ip('link', 'set', inner, 'netns', ns);
      this.ip('link', 'set', outer, 'netns', sw);
      this.ip('-n', sw, 'link', 'set', outer, 'master', 'br0');
      this.ip('-n', sw, 'link', 'set', outer, 'up');
      this.ip('-n', ns, 'link', 'set', 'lo', 'up');
      this.ip('-n', ns, 'addr', 'add', `${this.addr(host)}/24`, 'dev', inner);
      this.ip('-n', ns, 'link', 'set', inner, 'up');
    }
    return this;
  }

  /**
   * A process in a host's namespace (`ip netns exec` execs it, so the pid is the process's own),
   * output appended to `log`; with `ipc`, a Node process can `process.send` to the parent.
   */
  spawn(
    host: string,
    args: string[],
    opts: { env?: Record<string, string>; cwd?: string; log: string; ipc?: boolean },
  ): ChildProcess {
    const fd = openSync(opts.log, 'a');
    const child = spawn('ip', ['netns', 'exec', this.ns(host), process.execPath, ...args], {
      cwd: opts.cwd ?? ROOT,
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/root', ...opts.env },
      stdio: ['ignore', fd, fd, ...(opts.ipc ? ['ipc' as const] : [])],
    });
    closeSync(fd);
    this.children.add(child);
    child.once('exit', () => this.children.delete(child));
    return child;
  }

  /** Traffic between hosts a and b is dropped both ways (rules in a's namespace). */
  partition(a: string, b: string): void {
    this.exec(a, 'iptables', '-I', 'INPUT', '-s', this.addr(b), '-j', 'DROP');
    this.exec(a, 'iptables', '-I', 'OUTPUT', '-d', this.addr(b), '-j', 'DROP');
  }

  heal(a: string, b: string): void {
    spawnSync('ip', [
      'netns',
      'exec',
      this.ns(a),
      'iptables',
      '-D',
      'INPUT',
      '-s',
      this.addr(b),
      '-j',
      'DROP',
    ]);
    spawnSync('ip', [
      'netns',
      'exec',
      this.ns(a),
      'iptables',
      '-D',
      'OUTPUT',
      '-d',
      this.addr(b),
      '-j',
      'DROP',
    ]);
  }

  /**
   * Packets leaving the host are lost with probability `lossPercent` and delayed by `delayMs`
   * (netem). Kernels built without netem get an iptables statistic DROP for the loss and a tbf
   * queue (1 Mbit/s, up to `delayMs` of queueing) for the delay; `degradeMethod` says which.
   */
  degrade(host: string, lossPercent: number, delayMs: number): void {
    const dev = this.dev(host);
    if (netemKnown !== false) {
      const r = spawnSync(
        'ip',
        [
          'netns',
          'exec',
          this.ns(host),
          'tc',
          'qdisc',
          'replace',
          'dev',
          dev,
          'root',
          'netem',
          'loss',
          `${lossPercent}%`,
          'delay',
          `${delayMs}ms`,
        ],
        { encoding: 'utf8' },
      );
      netemKnown = r.status === 0;
      if (netemKnown) {
        this.degradeMethod = 'netem';
        return;
      }
    }
    this.degradeMethod = 'iptables+tbf';
    this.exec(host, 'iptables', ...this.lossRule('-I', dev, lossPercent));
    this.exec(
      host,
      'tc',
      'qdisc',
      'replace',
      'dev',
      dev,
      'root',
      'tbf',
      'rate',
      '1mbit',
      'burst',
      '32kbit',
      'latency',
      `${delayMs}ms`,
    );
  }

  private lossRule(op: string, dev: string, lossPercent: number): string[] {
    return [
      op,
      'OUTPUT',
      '-o',
      dev,
      '-m',
      'statistic',
      '--mode',
      'random',
      '--probability',
      String(lossPercent / 100),
      '-j',
      'DROP',
    ];
  }

  /** Undoes `degrade`. */
  restore(host: string, lossPercent: number): void {
    const ns = this.ns(host);
    const dev = this.dev(host);
    spawnSync('ip', ['netns', 'exec', ns, 'tc', 'qdisc', 'del', 'dev', dev, 'root']);
    if (this.degradeMethod === 'iptables+tbf')
      spawnSync('ip', ['netns', 'exec', ns, 'iptables', ...this.lossRule('-D', dev, lossPercent)]);
  }

  /** Kills what `spawn` started and removes the namespaces (their iptables rules and qdiscs go with them). */
  async destroy(): Promise<void> {
    await Promise.all([...this.children].map((c) => killHard(c)));
    this.destroySync();
  }

  private destroySync(): void {
    process.removeListener('exit', this.onExit);
    for (const c of this.children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    for (const ns of this.namespaces.splice(0).reverse()) spawnSync('ip', ['netns', 'del', ns]);
  }
}

/** SIGKILL, resolving when the process is gone. */
export function killHard(c: ChildProcess | undefined): Promise<void> {
  if (!c || c.exitCode !== null || c.signalCode !== null) return Promise.resolve();
  return new Promise((r) => {
    c.once('exit', () => r());
    c.kill('SIGKILL');
  });
}

/** Resolves with the first IPC message of a process started with `ipc`, or fails with its log's tail. */
export function firstMessage<T>(
  child: ChildProcess,
  what: string,
  log: string,
  timeoutMs = 30_000,
): Promise<T> {
  return new Promise((resolve, reject) => {
    const tail = (): string => readFileSync(log, 'utf8').slice(-3000);
    const t = setTimeout(
      () => reject(new Error(`${what} did not start within ${timeoutMs} ms; log:\n${tail()}`)),
      timeoutMs,
    );
    child.once('message', (m) => {
      clearTimeout(t);
      resolve(m as T);
    });
    child.once('exit', (code) => {
      clearTimeout(t);
      reject(new Error(`${what} exited with ${code}; log:\n${tail()}`));
    });
  });
}
