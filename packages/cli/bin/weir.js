#!/usr/bin/env node
// Entry for `npx weir`; the CLI itself is compiled to dist/.
import '../dist/bin/weir.js';
