import { build, type Message } from 'esbuild';
import { existsSync, statSync } from 'node:fs';
import path from 'node:path';

export class JobFileError extends Error {}

function formatMessage(m: Message): string {
  const loc = m.location;
  if (!loc) return `error: ${m.text}`;
  return `${loc.file}:${loc.line}:${loc.column + 1}: error: ${m.text}\n    ${loc.lineText}\n    ${' '.repeat(loc.column)}^`;
}

/**
 * Bundles a job file and everything it imports into one ES module. `@weir/api` stays an
 * import, so wherever the job file lives it runs against the runtime's own API.
 */
export async function bundleJob(file: string): Promise<string> {
  const abs = path.resolve(file);
  if (!existsSync(abs)) throw new JobFileError(`Job file not found: ${abs}`);
  if (!statSync(abs).isFile()) throw new JobFileError(`Job file is not a file: ${abs}`);
  try {
    const result = await build({
      entryPoints: [abs],
      bundle: true,
      format: 'esm',
      platform: 'node',
      target: 'node20',
      external: ['@weir/api'],
      write: false,
      logLevel: 'silent',
      sourcemap: 'inline',
      sourcesContent: false,
      banner: {
        js: "import { createRequire as __weirCreateRequire } from 'node:module'; const require = __weirCreateRequire(import.meta.url);",
      },
    });
    return result.outputFiles[0]!.text;
  } catch (err) {
    const errors = (err as { errors?: Message[] }).errors;
    if (errors && errors.length > 0) {
      throw new JobFileError(`The job file does not compile:\n${errors.map(formatMessage).join('\n')}`);
    }
    throw err;
  }
}
