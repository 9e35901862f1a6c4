import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { type DeltaRow, openDeltaTable, type StructType } from '../../src/delta/index.js';
import { scratchDirectories } from '../helpers/scratch.js';
import {
  canonicalAscii,
  canonicalRows,
  collect,
  corpusTables,
  expectedParquet,
  tableRoot,
} from './expected.js';

/** Temporary directories this file makes, removed when it ends. */
const scratchDir = scratchDirectories();

/** Latest-snapshot conformance: every corpus table with an expected result. */

/**
 * data-reader-partition-values was written by Spark in a Los Angeles session:
 * its zone-less timestamp partition value is wall-clock time there (the
 * expected/ data holds the instant), as PROTOCOL.md's partition value rules say.
 */
const WRITER_TIME_ZONES: Record<string, string> = { 'data-reader-partition-values': 'America/Los_Angeles' };

async function latest(table: string) {
  const snapshot = await openDeltaTable(tableRoot(table), { partitionTimeZone: WRITER_TIME_ZONES[table] });
  return { snapshot, rows: await collect(snapshot.scan()) };
}

function ids(schema: StructType, rows: DeltaRow[], column: string): number[] {
  assert.ok(schema.fields.some((f) => f.name === column));
  return rows.map((row) => Number(row[column])).sort((a, b) => a - b);
}

function range(from: number, to: number): number[] {
  return Array.from({ length: to - from + 1 }, (_, i) => from + i);
}

describe('Delta corpus: latest snapshot equals the Spark-written expected/ dataset', () => {
  for (const table of corpusTables().filter((t) => t.expected_kind === 'spark-parquet-latest')) {
    it(table.table, async () => {
      const { snapshot, rows } = await latest(table.table);
      const expected = await expectedParquet(table.table);
      assert.deepEqual(
        snapshot.schema.fields.map((f) => f.name).sort(),
        expected.schema.fields.map((f) => f.name).sort(),
      );
      const columns = expected.schema.fields.map((f) => f.name);
      assert.deepEqual(
        canonicalRows(snapshot.schema, rows, columns),
        canonicalRows(expected.schema, expected.rows, columns),
      );
    });
  }
});

describe('Delta corpus: latest snapshot equals the upstream assertion tables', () => {
  const cases: [string, string][] = [
    ['basic_partitioned', 'delta-kernel-rs/basic_partitioned__data.txt'],
    ['compacted-log-files-table', 'delta-kernel-rs/compacted-log-files-table__compacted_log_files_table.txt'],
    ['with-short-dv', 'delta-kernel-rs/with-short-dv__short_dv.txt'],
    ['type-widening', 'delta-kernel-rs/type-widening__type_widening_basic.txt'],
    ['type-widening', 'delta-kernel-rs/type-widening__type_widening_decimal.txt'],
  ];
  for (const [table, file] of cases) {
    it(`${table} (${file.split('__')[1] ?? file})`, async () => {
      const { snapshot, rows } = await latest(table);
      const expected = canonicalAscii(snapshot.schema, file);
      assert.deepEqual(
        canonicalRows(snapshot.schema, rows, expected.columns, { emptyStringIsNull: true }),
        expected.rows,
      );
    });
  }

  it('table-with-dv-small: values 1..8 (two rows deleted by an on-disk DV)', async () => {
    const { snapshot, rows } = await latest('table-with-dv-small');
    assert.equal(snapshot.version, 1);
    assert.deepEqual(ids(snapshot.schema, rows, 'value'), range(1, 8));
  });
});

describe('Delta corpus: latest snapshot follows the upstream rules', () => {
  it('basic-dv-with-checkpoint: id in 0..499 without multiples of 11', async () => {
    const { snapshot, rows } = await latest('basic-dv-with-checkpoint');
    assert.equal(snapshot.version, 46);
    assert.deepEqual(
      ids(snapshot.schema, rows, 'id'),
      range(0, 499).filter((id) => id % 11 !== 0),
    );
  });

  it('dv-partitioned-with-checkpoint: (x%10, x, foo+x%5) for x in 0..49 minus even x < 30', async () => {
    const { rows } = await latest('dv-partitioned-with-checkpoint');
    const expected = range(0, 49)
      .filter((x) => !(x % 2 === 0 && x < 30))
      .map((x) => `${x % 10}/${x}/foo${x % 5}`)
      .sort();
    assert.deepEqual(rows.map((r) => `${r.part}/${r.col1}/${r.col2}`).sort(), expected);
  });

  it('table-with-dv-large: v4 = 0..1999 minus {0,180,250,300,350,1353,1800}', async () => {
    const { snapshot, rows } = await latest('table-with-dv-large');
    assert.equal(snapshot.version, 4);
    const removed = new Set([0, 180, 250, 300, 350, 1353, 1800]);
    assert.deepEqual(
      ids(snapshot.schema, rows, 'value'),
      range(0, 1999).filter((v) => !removed.has(v)),
    );
  });
});

describe('Delta corpus: broken tables fail with a clear error', () => {
  it('deltalog-invalid-protocol-version names the reader version', async () => {
    const root = tableRoot('deltalog-invalid-protocol-version');
    await assert.rejects(openDeltaTable(root), {
      name: 'PierError',
      message: `Delta table at ${root} needs reader version 99; Pier reads up to 3.`,
    });
  });

  it('versions-not-contiguous names the missing version', async () => {
    await assert.rejects(openDeltaTable(tableRoot('versions-not-contiguous')), {
      name: 'PierError',
      message: /is missing version 1 \(needed to read version 2\); versions must be contiguous/,
    });
  });

  it('a reader feature Pier lacks is named', async () => {
    const root = await scratchDir('pier-delta-');
    await mkdir(join(root, '_delta_log'));
    const schemaString = JSON.stringify({
      type: 'struct',
      fields: [{ name: 'v', type: 'variant', nullable: true, metadata: {} }],
    });
    const commit = [
      {
        protocol: {
          minReaderVersion: 3,
          minWriterVersion: 7,
          readerFeatures: ['variantType'],
          writerFeatures: ['variantType'],
        },
      },
      {
        metaData: {
          id: 'x',
          format: { provider: 'parquet' },
          schemaString,
          partitionColumns: [],
          configuration: {},
        },
      },
    ];
    await writeFile(
      join(root, '_delta_log', '00000000000000000000.json'),
      commit.map((a) => JSON.stringify(a)).join('\n'),
    );
    await assert.rejects(openDeltaTable(root), {
      name: 'PierError',
      message: `Delta table at ${root} needs reader feature 'variantType', which Pier does not support.`,
    });
  });

  it('a directory without a log is not a table', async () => {
    const root = await scratchDir('pier-delta-');
    await assert.rejects(openDeltaTable(root), {
      name: 'PierError',
      message: /No Delta table at .*_delta_log has no commits/,
    });
  });

  it('every corpus table is covered by a test', () => {
    const covered = new Set([
      ...corpusTables()
        .filter((t) => t.expected_kind === 'spark-parquet-latest')
        .map((t) => t.table),
      'basic_partitioned',
      'compacted-log-files-table',
      'with-short-dv',
      'type-widening',
      'table-with-dv-small',
      'basic-dv-with-checkpoint',
      'table-with-dv-large',
      'deltalog-invalid-protocol-version',
      'versions-not-contiguous',
      // change data feed tables: cdf.test.ts
      'cdf-column-mapping-name-mode',
      'cdf-table',
      'cdf-table-non-partitioned',
      'cdf-table-simple',
      'cdf-table-with-cdc-and-dvs',
      'cdf-table-with-dv',
      'checkpoint-cdf-table',
    ]);
    assert.deepEqual(
      corpusTables()
        .map((t) => t.table)
        .filter((t) => !covered.has(t)),
      [],
    );
  });
});
