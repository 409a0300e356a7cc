import { largeStateSuite } from '../helpers/large-state-suite.js';

// 3M keys (330 MB of state) under a 128 MB heap; the 10M-key run is in `npm run chaos`.
// WEIR_LARGE_STATE_KEYS and WEIR_LARGE_STATE_HEAP_MB change the size.
largeStateSuite(
  Number(process.env.WEIR_LARGE_STATE_KEYS ?? 3_000_000),
  Number(process.env.WEIR_LARGE_STATE_HEAP_MB ?? 128),
);
