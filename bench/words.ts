/**
 * The benchmark's input, shared by the jobs and the single-process baseline so both count
 * exactly the same words: line i holds WORDS_PER_LINE words drawn from a fixed vocabulary.
 */
export const WORDS_PER_LINE = 10;
const VOCABULARY_SIZE = 10_000;

export const VOCABULARY: string[] = Array.from(
  { length: VOCABULARY_SIZE },
  (_, i) => `w${((i * 2654435761) >>> 0).toString(36)}`,
);

export function line(i: number): string {
  let h = (i * 2654435761) >>> 0;
  let s = '';
  for (let j = 0; j < WORDS_PER_LINE; j++) {
    h ^= h << 13;
    h >>>= 0;
    h ^= h >>> 17;
    h ^= h << 5;
    h >>>= 0;
    s += (j === 0 ? '' : ' ') + VOCABULARY[h % VOCABULARY_SIZE];
  }
  return s;
}
