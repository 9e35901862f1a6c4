import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type pg from 'pg';
import { type DeltaRow, type DeltaType, openDeltaTable } from '../../src/delta/index.js';
import { appendRows, createTable, mergeRows } from '../../src/delta/writer.js';
import { applyChanges } from '../../src/sync/changes.js';
import { targetLayout } from '../../src/sync/columns.js';
import { snapshotInto } from '../../src/sync/snapshot.js';
import { readProgress, type SyncTarget } from '../../src/sync/target.js';
import { collect, tableRoot } from '../delta/expected.js';
import { type ScratchPostgres, scratchPostgres } from '../helpers/postgres.js';
import { scratchDirectories } from '../helpers/scratch.js';
import { deltaCanonical, postgresCanonical } from './compare.js';

const scratchDir = scratchDirectories();
let server: ScratchPostgres;
let client: pg.Client;

before(async () => {
  server = await scratchPostgres();
  client = await server.connect();
});

after(async () => {
  await client?.end();
  await server?.stop();
});

/** The Delta snapshot at `version`, as the synced table must hold it. */
async function expectedAt(location: string, version: number, layout: ReturnType<typeof targetLayout>) {
  const snapshot = await openDeltaTable(location, { version });
  return deltaCanonical(layout, await collect(snapshot.scan()));
}

test('a snapshot copies every value exactly and leaves out rows with a null key', async () => {
  const location = tableRoot('data-reader-primitives');
  const snapshot = await openDeltaTable(location);
  const layout = targetLayout(snapshot.schema, { primaryKey: ['as_int'] });
  const target: SyncTarget = { schema: 'operational', table: 'primitives' };
  const progress: number[] = [];
  const result = await snapshotInto(client, {
    snapshot,
    target,
    layout,
    onProgress: (p) => progress.push(p.syncedRows),
  });
  assert.deepEqual(result, { deltaVersion: 0, rows: 10, skippedNullKeys: 1 });
  assert.equal(progress.at(-1), 11);
  assert.deepEqual(
    await postgresCanonical(client, target, layout),
    deltaCanonical(layout, await collect(snapshot.scan())),
  );
  const { rows: columns } = await client.query(
    `SELECT column_name, data_type, is_nullable FROM information_schema.columns
      WHERE table_schema = 'operational' AND table_name = 'primitives' ORDER BY ordinal_position`,
  );
  assert.deepEqual(
    columns.map((c) => `${c.column_name} ${c.data_type}${c.is_nullable === 'NO' ? ' NOT NULL' : ''}`),
    [
      'as_int integer NOT NULL',
      'as_long bigint',
      'as_byte smallint',
      'as_short smallint',
      'as_boolean boolean',
      'as_float real',
      'as_double double precision',
      'as_string text',
      'as_binary bytea',
      'as_big_decimal numeric',
    ],
  );
  assert.deepEqual(await readProgress(client, target), { deltaVersion: 0 });
});

test('a snapshot again replaces the table in one step: readers see the old rows or the new, never none', async () => {
  const location = tableRoot('table-with-dv-large');
  const layout = targetLayout((await openDeltaTable(location)).schema, { primaryKey: ['value'] });
  const target: SyncTarget = { schema: 'operational', table: 'dv_large' };
  await snapshotInto(client, { snapshot: await openDeltaTable(location, { version: 0 }), target, layout });
  const reader = await server.connect();
  try {
    // A reader inside a transaction holds the old table; the swap waits for it, then replaces it whole.
    await reader.query('BEGIN');
    const before = await reader.query('SELECT count(*)::int AS n FROM operational.dv_large');
    const swap = snapshotInto(client, { snapshot: await openDeltaTable(location), target, layout });
    const during = await reader.query('SELECT count(*)::int AS n FROM operational.dv_large');
    assert.equal(during.rows[0].n, before.rows[0].n);
    await reader.query('COMMIT');
    await swap;
  } finally {
    await reader.end();
  }
  for (const version of [4, 2]) {
    await snapshotInto(client, { snapshot: await openDeltaTable(location, { version }), target, layout });
    assert.deepEqual(
      await postgresCanonical(client, target, layout),
      await expectedAt(location, version, layout),
    );
  }
});

for (const [table, key, start] of [
  ['cdf-table', 'id', 0],
  ['cdf-table-with-dv', 'value', 0],
  ['cdf-table-with-cdc-and-dvs', 'id', 0],
  ['cdf-column-mapping-name-mode', 'id', 1],
] as const) {
  test(`${table}: the Change Data Feed replayed one commit at a time matches the snapshot after each`, async () => {
    const location = tableRoot(table);
    const latest = await openDeltaTable(location);
    const layout = targetLayout(latest.schema, { primaryKey: [key] });
    const target: SyncTarget = { schema: 'operational', table: table.replaceAll('-', '_') };
    await snapshotInto(client, {
      snapshot: await openDeltaTable(location, { version: start }),
      target,
      layout,
    });
    for (let version = start + 1; version <= latest.version; version++) {
      const result = await applyChanges(client, { location, target, layout, toVersion: version });
      assert.equal(result.deltaVersion, version);
      assert.deepEqual(
        await postgresCanonical(client, target, layout),
        await expectedAt(location, version, layout),
        `after version ${version}`,
      );
    }
    assert.deepEqual(await readProgress(client, target), { deltaVersion: latest.version });
    // Nothing new: nothing applied, nothing moved.
    const again = await applyChanges(client, { location, target, layout, toVersion: latest.version });
    assert.deepEqual(again, {
      deltaVersion: latest.version,
      changes: 0,
      upserted: 0,
      deleted: 0,
      skippedNullKeys: 0,
    });
  });
}

test('all commits at once give the same table as one at a time', async () => {
  const location = tableRoot('cdf-table-with-cdc-and-dvs');
  const latest = await openDeltaTable(location);
  const layout = targetLayout(latest.schema, { primaryKey: ['id'] });
  const target: SyncTarget = { schema: 'operational', table: 'cdc_dvs_batch' };
  await snapshotInto(client, { snapshot: await openDeltaTable(location, { version: 0 }), target, layout });
  const result = await applyChanges(client, { location, target, layout, toVersion: latest.version });
  assert.equal(result.deltaVersion, latest.version);
  assert.deepEqual(
    await postgresCanonical(client, target, layout),
    await expectedAt(location, latest.version, layout),
  );
});

test('a key the feed inserts twice fails with PRIMARY_KEY_CONSTRAINT_VIOLATION and changes nothing', async () => {
  // Version 4 of this table inserts ids 1 and 2 again, beside the rows that have them.
  const location = tableRoot('cdf-table-non-partitioned');
  const layout = targetLayout((await openDeltaTable(location)).schema, { primaryKey: ['id'] });
  const target: SyncTarget = { schema: 'operational', table: 'non_partitioned' };
  await snapshotInto(client, { snapshot: await openDeltaTable(location, { version: 0 }), target, layout });
  await applyChanges(client, { location, target, layout, toVersion: 3 });
  const before = await postgresCanonical(client, target, layout);
  assert.deepEqual(before, await expectedAt(location, 3, layout));
  await assert.rejects(applyChanges(client, { location, target, layout, toVersion: 4 }), {
    message:
      /^PRIMARY_KEY_CONSTRAINT_VIOLATION: the source now has more than one row with primary key \(id\) = \([12]\)/,
  });
  assert.deepEqual(await postgresCanonical(client, target, layout), before);
  assert.deepEqual(await readProgress(client, target), { deltaVersion: 3 });
  // A snapshot of that version says the same.
  await assert.rejects(snapshotInto(client, { snapshot: await openDeltaTable(location), target, layout }), {
    message:
      /^PRIMARY_KEY_CONSTRAINT_VIOLATION: the source has more than one row with primary key \(id\) = \([12]\)/,
  });
  assert.deepEqual(await postgresCanonical(client, target, layout), before);
});

for (const [table, key] of [
  ['data-reader-nested-struct', 'b'],
  ['data-reader-map', 'i'],
  ['data-reader-array-complex-objects', 'i'],
  ['data-reader-timestamp_ntz', 'id'],
  ['basic-decimal-table', 'col3'],
  ['data-reader-escaped-chars', '_1'],
] as const) {
  test(`${table}: a snapshot holds the Delta rows value by value (nested types as JSONB)`, async () => {
    const location = tableRoot(table);
    const snapshot = await openDeltaTable(location);
    const layout = targetLayout(snapshot.schema, { primaryKey: [key] });
    const target: SyncTarget = { schema: 'corpus', table };
    await snapshotInto(client, { snapshot, target, layout });
    assert.deepEqual(
      await postgresCanonical(client, target, layout),
      deltaCanonical(layout, await collect(snapshot.scan())),
    );
  });
}

test('exact values: 64-bit integers past 2^53, DECIMAL(38,18), microseconds, NaN and infinities, bytes, hard strings', async () => {
  const location = join(await scratchDir('pier-sync-values-'), 'values');
  const field = (name: string, type: DeltaType, nullable = true) => ({ name, type, nullable, metadata: {} });
  await createTable(location, {
    type: 'struct',
    fields: [
      field('id', { type: 'long' }, false),
      field('big', { type: 'long' }),
      field('amount', { type: 'decimal', precision: 38, scale: 18 }),
      field('at', { type: 'timestamp' }),
      field('local', { type: 'timestamp_ntz' }),
      field('ratio', { type: 'double' }),
      field('small', { type: 'float' }),
      field('bytes', { type: 'binary' }),
      field('note', { type: 'string' }),
      field('day', { type: 'date' }),
    ],
  });
  const rows: DeltaRow[] = [
    {
      id: 1n,
      big: 9007199254740993n, // 2^53 + 1: a JS number would make it ...992
      amount: '12345678901234567890.123456789012345678',
      at: '2024-02-29T23:59:59.999999Z',
      local: '1999-12-31T23:59:59.000001',
      ratio: Number.NaN,
      small: Math.fround(0.1),
      bytes: new Uint8Array([0, 9, 10, 13, 92, 255]),
      note: 'tab\there, newline\nthere, cr\r, back\\slash, "quotes", \'single\', \\N, ünïcødé ✓ 𝄞',
      day: '0001-01-01',
    },
    {
      id: -9223372036854775808n,
      big: 9223372036854775807n,
      amount: '-0.000000000000000001',
      at: '1970-01-01T00:00:00.000000Z',
      local: '2038-01-19T03:14:08.123456',
      ratio: Number.POSITIVE_INFINITY,
      small: Number.NEGATIVE_INFINITY,
      bytes: new Uint8Array([]),
      note: '',
      day: '9999-12-31',
    },
    {
      id: 3n,
      big: null,
      amount: null,
      at: null,
      local: null,
      ratio: -0,
      small: null,
      bytes: null,
      note: null,
      day: null,
    },
  ];
  await appendRows(location, rows);
  const layout = targetLayout((await openDeltaTable(location)).schema, { primaryKey: ['id'] });
  const target: SyncTarget = { schema: 'exact', table: 'values' };
  await snapshotInto(client, { snapshot: await openDeltaTable(location), target, layout });
  assert.deepEqual(await postgresCanonical(client, target, layout), deltaCanonical(layout, rows));
  const { rows: direct } = await client.query(
    `SELECT big::text, amount::text, note, ratio::text, encode(bytes, 'hex') AS hex FROM exact."values" WHERE id = 1`,
  );
  assert.deepEqual(direct[0], {
    big: '9007199254740993',
    amount: '12345678901234567890.123456789012345678',
    note: rows[0].note,
    ratio: 'NaN',
    hex: '00090a0d5cff',
  });
  // The same values arriving through the Change Data Feed.
  await mergeRows(location, {
    key: ['id'],
    upserts: [{ ...rows[0], id: 4n, big: -9007199254740993n }],
    deletes: [{ id: 3n }],
  });
  await applyChanges(client, { location, target, layout, toVersion: 2 });
  assert.deepEqual(await postgresCanonical(client, target, layout), await expectedAt(location, 2, layout));
  const { rows: merged } = await client.query(`SELECT big::text FROM exact."values" WHERE id = 4`);
  assert.equal(merged[0].big, '-9007199254740993');
});
