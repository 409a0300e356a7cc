import { closeSync, ftruncateSync, mkdirSync, openSync, readSync, unlinkSync, writeSync } from 'node:fs';
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import type { FrameKind } from '../worker-protocol.js';

interface SpilledFrame {
  kind: FrameKind;
  length: number;
  /** events stay in memory (a few bytes); buffers are in the file */
  bytes?: Uint8Array;
}

/**
 * Closed buffers of one subpartition that are over its in-memory budget, in order, in a file on
 * local disk. The file is unlinked as soon as it is opened, so nothing is left behind whatever
 * happens to the process; it is truncated whenever it has been read to its end.
 */
export class SpillFile {
  private fd: number | undefined;
  private readonly frames: SpilledFrame[] = [];
  private head = 0;
  private writePos = 0;
  private readPos = 0;
  /** bytes written to disk over the file's life (metrics and tests) */
  bytesSpilled = 0;

  constructor(
    private readonly directory: string,
    private readonly name: string,
  ) {}

  get size(): number {
    return this.frames.length - this.head;
  }

  /** Bytes of the buffers not yet shifted (the backlog they are, in bytes). */
  get bytes(): number {
    return this.writePos - this.readPos;
  }

  append(kind: FrameKind, bytes: Uint8Array): void {
    if (kind === 'event') {
      this.frames.push({ kind, length: bytes.byteLength, bytes });
      return;
    }
    if (this.fd === undefined) {
      mkdirSync(this.directory, { recursive: true });
      const file = path.join(this.directory, `spill-${this.name.replace(/[^\w.-]/g, '_')}-${randomUUID()}`);
      try {
        this.fd = openSync(file, 'wx+');
      } catch (e) {
        throw new Error(`Cannot create a network spill file in ${this.directory}: ${(e as Error).message}`);
      }
      unlinkSync(file);
    }
    let off = 0;
    while (off < bytes.byteLength)
      off += writeSync(this.fd, bytes, off, bytes.byteLength - off, this.writePos + off);
    this.writePos += bytes.byteLength;
    this.bytesSpilled += bytes.byteLength;
    this.frames.push({ kind, length: bytes.byteLength });
  }

  /** Every frame not yet shifted, in order, read without consuming them (an unaligned checkpoint's output). */
  peekAll(): Array<{ kind: FrameKind; bytes: Uint8Array }> {
    const out: Array<{ kind: FrameKind; bytes: Uint8Array }> = [];
    let pos = this.readPos;
    for (let i = this.head; i < this.frames.length; i++) {
      const f = this.frames[i]!;
      if (f.bytes) {
        out.push({ kind: f.kind, bytes: f.bytes.slice() });
        continue;
      }
      const buf = Buffer.allocUnsafeSlow(f.length);
      let off = 0;
      while (off < f.length) {
        const n = readSync(this.fd!, buf, off, f.length - off, pos + off);
        if (n === 0) throw new Error('Network spill file ended early');
        off += n;
      }
      pos += f.length;
      out.push({ kind: f.kind, bytes: buf });
    }
    return out;
  }

  /** The oldest frame, read back from disk if it is a buffer. */
  shift(): { kind: FrameKind; bytes: Uint8Array } {
    const f = this.frames[this.head]!;
    this.frames[this.head++] = undefined as never;
    let bytes = f.bytes;
    if (!bytes) {
      const buf = Buffer.allocUnsafeSlow(f.length);
      let off = 0;
      while (off < f.length) {
        const n = readSync(this.fd!, buf, off, f.length - off, this.readPos + off);
        if (n === 0) throw new Error('Network spill file ended early');
        off += n;
      }
      this.readPos += f.length;
      bytes = buf;
    }
    if (this.head === this.frames.length) this.reset();
    else if (this.head > 1024 && this.head * 2 > this.frames.length) {
      this.frames.splice(0, this.head);
      this.head = 0;
    }
    return { kind: f.kind, bytes };
  }

  private reset(): void {
    this.frames.length = 0;
    this.head = 0;
    if (this.fd !== undefined && this.writePos > 0) ftruncateSync(this.fd, 0);
    this.writePos = 0;
    this.readPos = 0;
  }

  close(): void {
    this.frames.length = 0;
    this.head = 0;
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }
}
