import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { openDeltaTable } from '../../src/delta/index.js';
import { storageFor } from '../../src/delta/storage.js';
import { commitTimeline } from '../../src/delta/table.js';
import { collect, corpusTables, tableRoot } from './expected.js';

/** Time travel by version and by timestamp. */

async function values(table: string, version: number, column: string): Promise<number[]> {
  const snapshot = await openDeltaTable(tableRoot(table), { version });
  assert.equal(snapshot.version, version);
  return (await collect(snapshot.scan())).map((row) => Number(row[column])).sort((a, b) => a - b);
}

function range(from: number, to: number, without: number[] = []): number[] {
  const skip = new Set(without);
  return Array.from({ length: to - from + 1 }, (_, i) => from + i).filter((v) => !skip.has(v));
}

describe('Delta time travel by version', () => {
  it('table-with-dv-large: every version follows the upstream rule', async () => {
    assert.deepEqual(await values('table-with-dv-large', 0, 'value'), range(0, 1999));
    assert.deepEqual(
      await values('table-with-dv-large', 1, 'value'),
      range(0, 1999, [0, 180, 300, 700, 1800]),
    );
    assert.deepEqual(await values('table-with-dv-large', 2, 'value'), range(0, 1999, [0, 180, 1800]));
    assert.deepEqual(
      await values('table-with-dv-large', 3, 'value'),
      range(0, 1999, [0, 180, 1800, 300, 250, 350, 900, 1353, 1567]),
    );
    assert.deepEqual(
      await values('table-with-dv-large', 4, 'value'),
      range(0, 1999, [0, 180, 1800, 300, 250, 350, 1353]),
    );
  });

  it('table-with-dv-small: v0 = 0..9, v1 = 1..8', async () => {
    assert.deepEqual(await values('table-with-dv-small', 0, 'value'), range(0, 9));
    assert.deepEqual(await values('table-with-dv-small', 1, 'value'), range(1, 8));
  });

  it('cdf-table-simple: insert, delete all, then change-data-only commit', async () => {
    assert.deepEqual(await values('cdf-table-simple', 0, 'id'), range(0, 9));
    assert.deepEqual(await values('cdf-table-simple', 1, 'id'), []);
    assert.deepEqual(await values('cdf-table-simple', 2, 'id'), []);
  });

  it('uses the schema and partitioning of the version read', async () => {
    const before = await openDeltaTable(tableRoot('time-travel-partition-changes-b'), { version: 0 });
    const after = await openDeltaTable(tableRoot('time-travel-partition-changes-b'), { version: 1 });
    assert.deepEqual(before.partitionColumns, ['part5']);
    assert.deepEqual(after.partitionColumns, ['part2']);
    const schemaV0 = await openDeltaTable(tableRoot('time-travel-schema-changes-b'), { version: 0 });
    const schemaV1 = await openDeltaTable(tableRoot('time-travel-schema-changes-b'), { version: 1 });
    assert.ok(schemaV1.schema.fields.length > schemaV0.schema.fields.length);
  });

  it('every version of every readable table scans numRecords minus deleted rows', async () => {
    for (const table of corpusTables().filter((t) => t.expected_kind !== 'must-fail')) {
      const timeline = await commitTimeline(storageFor(tableRoot(table.table)));
      for (const { version } of timeline) {
        const snapshot = await openDeltaTable(tableRoot(table.table), { version });
        let expected = 0;
        let known = true;
        for (const file of snapshot.files) {
          const numRecords = file.stats ? JSON.parse(file.stats).numRecords : undefined;
          if (numRecords === undefined) known = false;
          expected += (numRecords ?? 0) - (file.deletionVector?.cardinality ?? 0);
        }
        if (!known) continue;
        const rows = await collect(snapshot.scan());
        assert.equal(rows.length, expected, `${table.table} at version ${version}`);
      }
    }
  });

  it('refuses a version that does not exist', async () => {
    await assert.rejects(openDeltaTable(tableRoot('cdf-table'), { version: 7 }), {
      name: 'PierError',
      message: /has no version 7; the latest version is 3/,
    });
  });
});

describe('Delta time travel by timestamp', () => {
  // cdf-table-simple commitInfo timestamps: v0 1734480103056, v1 …, v2 1734480106177.
  it('reads the latest version committed at or before the time', async () => {
    const root = tableRoot('cdf-table-simple');
    const timeline = await commitTimeline(storageFor(root));
    assert.equal(timeline[0].timestamp, 1734480103056);
    for (const { version, timestamp } of timeline) {
      assert.equal((await openDeltaTable(root, { timestamp })).version, version);
      assert.equal((await openDeltaTable(root, { timestamp: new Date(timestamp + 1) })).version, version);
    }
    const v0 = await openDeltaTable(root, { timestamp: '2024-12-18T00:01:43.056Z' });
    assert.equal(v0.version, 0);
    assert.equal((await collect(v0.scan())).length, 10);
  });

  it('refuses a time before the first commit', async () => {
    await assert.rejects(
      openDeltaTable(tableRoot('cdf-table-simple'), { timestamp: '2020-01-01T00:00:00Z' }),
      {
        name: 'PierError',
        message:
          /has no version at 2020-01-01T00:00:00.000Z; its earliest available commit \(version 0\) is from 2024-12-18/,
      },
    );
  });
});
