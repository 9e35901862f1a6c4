import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { readChanges, type VersionBound } from '../../src/delta/index.js';
import { canonicalAscii, canonicalRows, collect, tableRoot } from './expected.js';

/** Change Data Feed conformance: change rows compare as multisets with the upstream assertion tables. */

const cases: { table: string; from: VersionBound; to?: number; file: string }[] = [
  { table: 'cdf-table', from: 0, file: 'delta-kernel-rs/cdf-table__v0-latest.txt' },
  {
    table: 'cdf-table-non-partitioned',
    from: 0,
    file: 'delta-kernel-rs/cdf-table-non-partitioned__v0-latest.txt',
  },
  {
    table: 'cdf-column-mapping-name-mode',
    from: 1,
    file: 'delta-kernel-rs/cdf-column-mapping-name-mode__v1-latest.txt',
  },
  { table: 'cdf-table-with-dv', from: 0, file: 'delta-kernel-rs/cdf-table-with-dv__v0-latest.txt' },
  {
    table: 'cdf-table-with-cdc-and-dvs',
    from: 0,
    file: 'delta-kernel-rs/cdf-table-with-cdc-and-dvs__v0-latest.txt',
  },
  { table: 'cdf-table-simple', from: 0, to: 0, file: 'delta-kernel-rs/cdf-table-simple__v0-0.txt' },
  { table: 'cdf-table-simple', from: 1, to: 1, file: 'delta-kernel-rs/cdf-table-simple__v1-1.txt' },
  { table: 'cdf-table-simple', from: 2, to: 2, file: 'delta-kernel-rs/cdf-table-simple__v2-2.txt' },
  { table: 'cdf-table-simple', from: 0, to: 2, file: 'delta-kernel-rs/cdf-table-simple__v0-2.txt' },
  {
    // Vacuumed table: the log starts at a checkpoint; _commit_timestamp is compared too.
    table: 'checkpoint-cdf-table',
    from: { timestamp: '2024-01-06T15:44:59.570Z' },
    file: 'delta-rs/checkpoint-cdf-table__from-ts-2024-01-06T15:44:59.570.txt',
  },
];

describe('Delta corpus: change data feed', () => {
  for (const c of cases) {
    it(`${c.table} ${c.file.split('__')[1]}`, async () => {
      const changes = await readChanges(tableRoot(c.table), c.from, c.to);
      const rows = await collect(changes);
      const expected = canonicalAscii(changes.schema, c.file);
      assert.deepEqual(
        canonicalRows(changes.schema, rows, expected.columns, { emptyStringIsNull: true }),
        expected.rows,
      );
    });
  }

  it('change rows carry the three CDF columns, typed', async () => {
    const changes = await readChanges(tableRoot('cdf-table-simple'), 2, 2);
    assert.deepEqual(
      changes.schema.fields.slice(-3).map((f) => [f.name, f.type.type]),
      [
        ['_change_type', 'string'],
        ['_commit_version', 'long'],
        ['_commit_timestamp', 'timestamp'],
      ],
    );
    const [row] = await collect(changes);
    assert.equal(row._commit_version, 2n);
    // commitInfo.timestamp of version 2 is 1734480106177.
    assert.equal(row._commit_timestamp, '2024-12-18T00:01:46.177000Z');
  });

  it('refuses a range whose commits were cleaned up, naming the first readable version', async () => {
    await assert.rejects(readChanges(tableRoot('checkpoint-cdf-table'), 0), {
      name: 'PierError',
      message: /no longer has the commit of version 0 .*read changes from version 3 or later/,
    });
  });

  it('refuses versions where change data feed was not enabled', async () => {
    await assert.rejects(readChanges(tableRoot('cdf-column-mapping-name-mode'), 0), {
      name: 'PierError',
      message: /Change data feed is not enabled .* at version 0/,
    });
  });

  it('refuses an empty or out-of-range version range', async () => {
    await assert.rejects(readChanges(tableRoot('cdf-table'), 3, 1), /start version 3 is after end version 1/);
    await assert.rejects(readChanges(tableRoot('cdf-table'), 0, 99), /has no version 99; the latest is 3/);
  });
});
