/**
 * Pier's layering, checked by `npm run lint` (and so by CI). Each rule says
 * why it exists; see docs/architecture.md for the picture.
 */
module.exports = {
  forbidden: [
    {
      name: 'no-cycles',
      comment: 'A cycle makes two modules one: neither can be read, tested or changed alone.',
      severity: 'error',
      from: { path: '^dist/src/' },
      to: { circular: true },
    },
    {
      name: 'delta-stands-alone',
      comment: "The Delta reader is a library: it knows nothing of Pier but its error type.",
      severity: 'error',
      from: { path: '^dist/src/delta/' },
      to: { path: '^dist/src/', pathNot: ['^dist/src/delta/', '^dist/src/errors\\.js$'] },
    },
    {
      name: 'proxy-knows-no-store',
      comment: 'The proxy asks the control plane through its own small interfaces (proxy/directory.ts), never the store.',
      severity: 'error',
      from: { path: '^dist/src/proxy/' },
      to: { path: ['^dist/src/store/', '^dist/src/control/'] },
    },
    {
      name: 'engine-below-api',
      comment: 'Engines run Postgres; they never reach up into the HTTP edge.',
      severity: 'error',
      from: { path: '^dist/src/engine/' },
      to: { path: '^dist/src/api/' },
    },
    {
      name: 'nothing-imports-the-cli',
      comment: 'The CLI is an edge: it uses everything, nothing uses it.',
      severity: 'error',
      from: { path: '^dist/src/', pathNot: '^dist/src/cli/' },
      to: { path: '^dist/src/cli/' },
    },
  ],
  // Run on the build (dist/src): the compiler is not the TypeScript JS API, so the JS it
  // emits, with the same file layout, is what gets cruised.
  options: {
    doNotFollow: { path: 'node_modules' },
  },
};
