/**
 * Column batches: the reader's row-group slices, deletion vectors applied
 * per slice, give exactly the rows a whole-row-group read gives.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { openDeltaTable, readChanges } from '../../src/delta/index.js';
import { batchRanges, batchRows, readColumnBatches, readDataFile } from '../../src/delta/scan.js';
import { collect, tableRoot } from './expected.js';

test('batch ranges cover every row group in slices no larger than the limit, never across groups', () => {
  assert.deepEqual(batchRanges([300_000, 10], 131_072), [
    [0, 100_000],
    [100_000, 200_000],
    [200_000, 300_000],
    [300_000, 300_010],
  ]);
  assert.deepEqual(batchRanges([5, 0, 3], 2), [
    [0, 2],
    [2, 4],
    [4, 5],
    [5, 7],
    [7, 8],
  ]);
  assert.deepEqual(batchRanges([131_072]), [[0, 131_072]]);
});

for (const table of ['table-with-dv-large', 'table-with-dv-small', 'data-reader-primitives', 'cdf-table']) {
  test(`${table}: slices of 7 rows, deletion vectors applied per slice, give the rows a whole read gives`, async () => {
    const snapshot = await openDeltaTable(tableRoot(table));
    for (const file of snapshot.files) {
      const whole = await collect(readDataFile(snapshot.layout, file));
      const sliced = await collect(readDataFile(snapshot.layout, file, { maxBatchRows: 7 }));
      assert.deepEqual(sliced, whole);
      // And column by column, without row objects, the same.
      const batches = [];
      for await (const batch of readColumnBatches(snapshot.layout, file, { maxBatchRows: 7 })) {
        assert.ok(batch.length <= 7);
        batches.push(...batchRows(batch));
      }
      assert.deepEqual(batches, whole);
      if (whole.length > 3) {
        const only = [0, 2, whole.length - 1];
        const picked = await collect(
          readDataFile(snapshot.layout, file, { rows: { only }, maxBatchRows: 2 }),
        );
        const all = await collect(readDataFile(snapshot.layout, file, { rows: { exclude: [] } }));
        assert.deepEqual(
          picked,
          only.map((i) => all[i]),
        );
      }
    }
  });
}

test('a change feed read column by column holds the rows it yields as rows', async () => {
  const location = tableRoot('cdf-table');
  const rows = await collect(await readChanges(location, 0));
  const fromColumns = [];
  for await (const batch of (await readChanges(location, 0)).columnBatches())
    fromColumns.push(...batchRows(batch));
  assert.deepEqual(fromColumns, rows);
  assert.ok(rows.length > 0);
});
