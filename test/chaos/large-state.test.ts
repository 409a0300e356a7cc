import { largeStateSuite } from '../helpers/large-state-suite.js';

// 10M keys x 100 bytes (1.1 GB of state) under a 256 MB heap: about 3 minutes on 2 cores, so
// here and not in `npm test` (which runs 3M keys under 128 MB).
largeStateSuite(10_000_000, 256);
