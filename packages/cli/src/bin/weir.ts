import { Command } from 'commander';
import { maskString, registerEnvironmentSecrets } from '@weir/core';
import { JobFileError } from '@weir/client';
import { COMMANDS } from '../commands/index.js';

/** The `weir` CLI: one file per command under commands/, listed in COMMANDS. */
const program = new Command();
program.name('weir').description('weir: distributed stream processing in TypeScript').showHelpAfterError();
for (const register of COMMANDS) register(program);

registerEnvironmentSecrets(process.env);
program.parseAsync(process.argv).catch((err: Error & { details?: string; code?: number }) => {
  const msg = err instanceof JobFileError ? err.message : (err.details ?? err.message);
  console.error(`weir: ${maskString(msg)}`);
  process.exit(1);
});
