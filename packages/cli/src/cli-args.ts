import { InvalidArgumentError } from 'commander';

/** A commander argument parser from one of core's validating parsers, reporting its message as commander's. */
export function arg<T>(parse: (v: string, what: string) => T, what: string) {
  return (v: string): T => {
    try {
      return parse(v, what);
    } catch (e) {
      throw new InvalidArgumentError((e as Error).message);
    }
  };
}
