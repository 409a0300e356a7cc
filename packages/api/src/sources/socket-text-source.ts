import net from 'node:net';
import { StringDecoder } from 'node:string_decoder';
import { AVAILABLE, InputStatus, type ReaderOutput, type Source, type SourceReader } from '../source.js';

const HIGH_WATER = 10_000;

/** Lines from a TCP server, like Flink's socketTextStream; ends when the server closes. */
export class SocketTextSource implements Source<string> {
  readonly boundedness = 'CONTINUOUS_UNBOUNDED' as const;
  readonly maxParallelism = 1;
  constructor(
    readonly host: string,
    readonly port: number,
    readonly delimiter = '\n',
  ) {}

  createReader(): SourceReader<string> {
    const { host, port, delimiter } = this;
    const lines: string[] = [];
    let head = 0;
    let partial = '';
    let ended = false;
    let error: Error | undefined;
    let socket: net.Socket | undefined;
    let wake: (() => void) | undefined;
    let available: Promise<void> = AVAILABLE;
    const notify = (): void => {
      const w = wake;
      wake = undefined;
      w?.();
    };
    const decoder = new StringDecoder('utf8');
    return {
      start() {
        socket = net.connect({ host, port });
        socket.on('data', (d: Buffer) => {
          const parts = (partial + decoder.write(d)).split(delimiter);
          partial = parts.pop()!;
          for (const p of parts) lines.push(p.endsWith('\r') ? p.slice(0, -1) : p);
          if (lines.length - head > HIGH_WATER) socket!.pause();
          notify();
        });
        socket.on('end', () => {
          partial += decoder.end();
          if (partial) lines.push(partial);
          ended = true;
          notify();
        });
        socket.on('error', (e) => {
          error = new Error(`Socket source ${host}:${port}: ${e.message}`);
          notify();
        });
      },
      pollNext(out: ReaderOutput<string>): InputStatus {
        if (error) throw error;
        if (head < lines.length) {
          const stop = Math.min(lines.length, head + 512);
          for (let i = head; i < stop; i++) out.collect(lines[i]!);
          head = stop;
          if (head === lines.length) {
            lines.length = 0;
            head = 0;
            socket?.resume();
          }
          return InputStatus.MORE_AVAILABLE;
        }
        if (ended) return InputStatus.END_OF_INPUT;
        available = new Promise((r) => (wake = r));
        return InputStatus.NOTHING_AVAILABLE;
      },
      isAvailable: () => available,
      close() {
        socket?.destroy();
      },
    };
  }
}
