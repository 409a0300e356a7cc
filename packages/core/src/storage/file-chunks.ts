import { open } from 'node:fs/promises';

/**
 * The first `size` bytes of a file in chunks of their own memory (a writer may keep them);
 * throws when the file is shorter.
 */
export async function* fileChunks(file: string, size: number, chunk = 4 << 20): AsyncGenerator<Buffer> {
  const fh = await open(file, 'r');
  try {
    let at = 0;
    while (at < size) {
      const want = Math.min(chunk, size - at);
      const buf = Buffer.allocUnsafe(want);
      const { bytesRead } = await fh.read(buf, 0, want, at);
      if (bytesRead === 0) throw new Error(`${file} is shorter than the ${size} bytes recorded`);
      at += bytesRead;
      yield bytesRead === want ? buf : buf.subarray(0, bytesRead);
    }
  } finally {
    await fh.close();
  }
}
