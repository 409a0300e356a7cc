// Bundles the dashboard into packages/jobmanager/dist/dashboard (run by `npm run build`): one
// script and one stylesheet, with preact, dagre and uPlot inside, so nothing is fetched from
// outside at run time.
import { build } from 'esbuild';
import { copyFileSync, mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const here = (p) => fileURLToPath(new URL(p, import.meta.url));
const out = here('../dist/dashboard/');
mkdirSync(out, { recursive: true });
await build({
  entryPoints: [here('./src/main.tsx')],
  bundle: true,
  format: 'esm',
  target: 'es2022',
  minify: true,
  sourcemap: true,
  jsx: 'automatic',
  jsxImportSource: 'preact',
  outdir: out,
  logLevel: 'warning',
});
copyFileSync(here('./index.html'), `${out}index.html`);
