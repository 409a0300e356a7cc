import type { Command } from 'commander';

/** One `weir` command (or command group): adds itself, its options and its action to the program. */
export type RegisterCommand = (program: Command) => void;
