// Bundles the console (console/src, Preact + uPlot) into dist/console with esbuild: one
// script, one stylesheet and the page, nothing fetched at run time. Run by `npm install`
// (the prepare script) and `npm run build:console`; prints the gzip size of what a browser loads.
import { copyFile, mkdir, readFile } from 'node:fs/promises';
import { gzipSync } from 'node:zlib';
import { build } from 'esbuild';

const root = new URL('..', import.meta.url);
const out = new URL('dist/console/', root);
await mkdir(out, { recursive: true });
await build({
  entryPoints: { main: new URL('console/src/main.tsx', root).pathname },
  outdir: out.pathname,
  bundle: true,
  minify: true,
  format: 'esm',
  target: 'es2022',
  jsx: 'automatic',
  jsxImportSource: 'preact',
  sourcemap: false,
  legalComments: 'none',
  logLevel: 'warning',
});
await copyFile(new URL('console/index.html', root), new URL('index.html', out));

let total = 0;
const sizes = [];
for (const name of ['index.html', 'main.js', 'main.css']) {
  const bytes = gzipSync(await readFile(new URL(name, out))).length;
  total += bytes;
  sizes.push(`${name} ${(bytes / 1024).toFixed(1)} kB`);
}
console.log(`console: ${sizes.join(', ')} (gzip; ${(total / 1024).toFixed(1)} kB in all)`);
