/**
 * A built-in text for the examples: a few thousand lines made deterministically from a
 * small vocabulary, so every run (and every TaskManager planning the job) sees the same words.
 */
const VOCABULARY = (
  'the river weir holds water back and lets it pass in measure stream flow current bank mill ' +
  'wheel stone gate keeper salmon ladder spring flood drought summer winter morning evening ' +
  'light shadow bridge meadow willow heron otter reed sluice channel pool ripple eddy dam ' +
  'barrier checkpoint barrier record state key window task manager job slot'
).split(' ');

export function corpus(lines = 5000, seed = 42): string[] {
  let s = seed >>> 0;
  const next = (): number => {
    // xorshift32: small, fast and the same everywhere
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s;
  };
  const out: string[] = [];
  for (let i = 0; i < lines; i++) {
    const n = 4 + (next() % 9);
    const words: string[] = [];
    for (let j = 0; j < n; j++) words.push(VOCABULARY[next() % VOCABULARY.length]!);
    out.push(words.join(' '));
  }
  return out;
}
