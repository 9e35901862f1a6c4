import assert from 'node:assert/strict';
import { cp, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { pathToFileURL } from 'node:url';
import { deletionVectorPath } from '../../src/delta/deletion-vector.js';
import { loadDeletionVector, openDeltaTable, storageFor } from '../../src/delta/index.js';
import { scratchDirectories } from '../helpers/scratch.js';
import { tableRoot } from './expected.js';

/**
 * A Delta log decides which files are read. Whoever can write a log (or plant
 * a symbolic link) inside a registered table must not make Pier read files
 * outside that table: another table's data, or anything else on the host.
 */

const scratchDir = scratchDirectories();
const OUTSIDE = /refers to a file outside its directory/;

/** Two copies of a corpus table side by side: `own` is read, `other` must stay out of reach. */
async function twoTables(name: string): Promise<{ own: string; other: string }> {
  const lake = await scratchDir('pier-confine-');
  const own = join(lake, 'own');
  const other = join(lake, 'other');
  await cp(tableRoot(name), own, { recursive: true });
  await cp(tableRoot(name), other, { recursive: true });
  return { own, other };
}

async function scanAll(root: string): Promise<number> {
  let rows = 0;
  for await (const batch of (await openDeltaTable(root)).scan()) rows += batch.length;
  return rows;
}

/** Rewrites `add.path` of the letter=a file in the last commit of basic_partitioned. */
async function pointLetterA(root: string, path: (original: string) => string): Promise<void> {
  const commit = join(root, '_delta_log', '00000000000000000001.json');
  const text = await readFile(commit, 'utf8');
  const original = /"path":"(letter=a\/[^"]+)"/.exec(text)?.[1];
  assert.ok(original, 'the corpus commit names a letter=a file');
  await writeFile(commit, text.replace(`"path":"${original}"`, `"path":"${path(original)}"`));
}

describe('a Delta table reads only files inside its own directory', () => {
  it('reads the untouched copy', async () => {
    const { own } = await twoTables('basic_partitioned');
    assert.equal(await scanAll(own), 6);
  });

  for (const [what, path] of [
    ['an absolute add.path into another table', (other: string, file: string) => join(other, file)],
    [
      'a file:// add.path into another table',
      (other: string, file: string) => pathToFileURL(join(other, file)).href,
    ],
    ['a relative add.path climbing out with ..', (_other: string, file: string) => `../other/${file}`],
    [
      'an encoded ../ in add.path',
      (_other: string, file: string) => `..%2Fother%2F${file.replace('/', '%2F')}`,
    ],
    ['an absolute add.path to a host file', () => '/etc/passwd'],
  ] as const) {
    it(`refuses ${what}`, async () => {
      const { own, other } = await twoTables('basic_partitioned');
      await pointLetterA(own, (file) => path(other, file));
      await assert.rejects(scanAll(own), { name: 'PierError', kind: 'INVALID_STATE', message: OUTSIDE });
    });
  }

  it('refuses a data file that is a symbolic link out of the table, whether or not its target exists', async () => {
    const { own, other } = await twoTables('basic_partitioned');
    const dir = join(own, 'letter=a');
    const [file] = (await readdir(dir)).filter((name) => name.endsWith('.parquet'));
    await rm(join(dir, file));
    await symlink(join(other, 'letter=a', file), join(dir, file));
    await assert.rejects(scanAll(own), { kind: 'INVALID_STATE', message: OUTSIDE });
    await rm(join(dir, file));
    await symlink(join(other, 'letter=a', 'gone.parquet'), join(dir, file));
    await assert.rejects(scanAll(own), { kind: 'INVALID_STATE', message: OUTSIDE });
  });

  it('refuses an absolute-path (p) deletion vector outside the table', async () => {
    const { own, other } = await twoTables('table-with-dv-small');
    const path = deletionVectorPath({
      storageType: 'u',
      pathOrInlineDv: 'vBn[lx{q8@P<9BNH/isA',
      sizeInBytes: 36,
      cardinality: 2,
    });
    const dv = (root: string) => ({
      storageType: 'p' as const,
      pathOrInlineDv: pathToFileURL(join(root, path)).href,
      offset: 1,
      sizeInBytes: 36,
      cardinality: 2,
    });
    assert.deepEqual(await loadDeletionVector(storageFor(own), dv(own)), [0, 9]);
    await assert.rejects(loadDeletionVector(storageFor(own), dv(other)), {
      kind: 'INVALID_STATE',
      message: OUTSIDE,
    });
  });

  it('refuses a V2 checkpoint sidecar outside the table', async () => {
    const { own, other } = await twoTables('v2-checkpoint-json');
    const log = join(own, '_delta_log');
    const [checkpoint] = (await readdir(log)).filter((name) => /^\d+\.checkpoint\..*\.json$/.test(name));
    const text = await readFile(join(log, checkpoint), 'utf8');
    const sidecar = /"sidecar":\{"path":"([^"]+)"/.exec(text)?.[1];
    assert.ok(sidecar, 'the corpus checkpoint has sidecars');
    const elsewhere = join(other, '_delta_log', '_sidecars', sidecar);
    await writeFile(join(log, checkpoint), text.replace(`"path":"${sidecar}"`, `"path":"${elsewhere}"`));
    await assert.rejects(openDeltaTable(own), { kind: 'INVALID_STATE', message: OUTSIDE });
  });
});
