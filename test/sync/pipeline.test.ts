import assert from 'node:assert/strict';
import { cp, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type pg from 'pg';
import { type DeltaRow, openDeltaTable, type StructType } from '../../src/delta/index.js';
import { serializeSchema } from '../../src/delta/schema.js';
import { appendRows, createTable, mergeRows } from '../../src/delta/writer.js';
import { targetLayout } from '../../src/sync/columns.js';
import { SyncFailure } from '../../src/sync/failure.js';
import { type SyncDefinition, syncOnce } from '../../src/sync/pipeline.js';
import { snapshotInto } from '../../src/sync/snapshot.js';
import { watchDeltaLog } from '../../src/sync/watch.js';
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

const field = (name: string, type: 'long' | 'string' | 'double' | 'integer', nullable = true) => ({
  name,
  type: { type },
  nullable,
  metadata: {},
});
const SCHEMA: StructType = {
  type: 'struct',
  fields: [field('id', 'long', false), field('region', 'string'), field('revenue', 'double')],
};

async function source(name: string): Promise<SyncDefinition> {
  const location = join(await scratchDir('pier-sync-pipeline-'), name);
  await createTable(location, SCHEMA);
  await appendRows(location, [
    { id: 1n, region: 'emea', revenue: 10.5 },
    { id: 2n, region: 'amer', revenue: 20 },
  ]);
  return {
    location,
    sourceName: `analytics.gold.${name}`,
    target: { schema: 'operational', table: name },
    primaryKey: ['id'],
    policy: 'TRIGGERED',
  };
}

/** Postgres holds the source at its latest version, value by value. */
async function assertInSync(definition: SyncDefinition) {
  const snapshot = await openDeltaTable(definition.location);
  const layout = targetLayout(snapshot.schema, { primaryKey: definition.primaryKey });
  assert.deepEqual(
    await postgresCanonical(client, definition.target, layout),
    deltaCanonical(layout, await collect(snapshot.scan())),
  );
}

/** A commit that changes the table's schema, as `ALTER TABLE` in Spark writes it. */
async function changeSchema(location: string, schema: StructType): Promise<void> {
  const snapshot = await openDeltaTable(location);
  const metaData = { ...snapshot.metadata, schemaString: serializeSchema(schema) };
  const name = `${String(snapshot.version + 1).padStart(20, '0')}.json`;
  const commitInfo = { timestamp: Date.now(), operation: 'ADD COLUMNS' };
  await writeFile(
    join(location, '_delta_log', name),
    `${JSON.stringify({ commitInfo })}\n${JSON.stringify({ metaData })}\n`,
    {
      flag: 'wx',
    },
  );
}

test('first a snapshot, then the changes of each new version, then nothing to do', async () => {
  const definition = await source('revenue');
  assert.deepEqual(await syncOnce(client, definition), {
    kind: 'snapshot',
    deltaVersion: 1,
    rows: 2,
    skippedNullKeys: 0,
  });
  await assertInSync(definition);
  await mergeRows(definition.location, {
    key: ['id'],
    upserts: [
      { id: 2n, region: 'amer', revenue: 25 },
      { id: 3n, region: 'apac', revenue: 7.25 },
    ],
    deletes: [{ id: 1n }],
  });
  const changed = await syncOnce(client, definition);
  assert.equal(changed.kind, 'changes');
  assert.deepEqual(
    changed.kind === 'changes' && { v: changed.deltaVersion, up: changed.upserted, del: changed.deleted },
    { v: 2, up: 2, del: 1 },
  );
  await assertInSync(definition);
  assert.deepEqual(await syncOnce(client, definition), { kind: 'up-to-date', deltaVersion: 2 });
});

test('SNAPSHOT re-copies the table when the source moved; a full refresh always does', async () => {
  const definition = { ...(await source('snap')), policy: 'SNAPSHOT' as const };
  await syncOnce(client, definition);
  assert.deepEqual(await syncOnce(client, definition), { kind: 'up-to-date', deltaVersion: 1 });
  await appendRows(definition.location, [{ id: 9n, region: 'emea', revenue: 1 }]);
  assert.equal((await syncOnce(client, definition)).kind, 'snapshot');
  await assertInSync(definition);
  assert.equal((await syncOnce(client, definition, { fullRefresh: true })).kind, 'snapshot');
});

test('a column added to the source is added to the table; a changed type fails until a full refresh', async () => {
  const definition = await source('evolving');
  await syncOnce(client, definition);
  const wider: StructType = { type: 'struct', fields: [...SCHEMA.fields, field('orders', 'integer')] };
  await changeSchema(definition.location, wider);
  await appendRows(definition.location, [{ id: 5n, region: 'emea', revenue: 3, orders: 12 } as DeltaRow]);
  const evolved = await syncOnce(client, definition);
  assert.deepEqual(evolved.kind === 'changes' && evolved.addedColumns, ['orders']);
  await assertInSync(definition);

  const retyped: StructType = {
    type: 'struct',
    fields: wider.fields.map((f) => (f.name === 'revenue' ? field('revenue', 'string') : f)),
  };
  await changeSchema(definition.location, retyped);
  await assert.rejects(syncOnce(client, definition), (error: unknown) => {
    assert.ok(error instanceof SyncFailure);
    assert.equal(error.reason, 'SCHEMA_CHANGED');
    assert.equal(error.needsFullRefresh, true);
    assert.match(
      error.message,
      /column 'revenue' is now TEXT, the table has double precision\. Run a full refresh/,
    );
    return true;
  });
  assert.equal((await syncOnce(client, definition, { fullRefresh: true })).kind, 'snapshot');
  await assertInSync(definition);
});

test('a log cleaned up past the synced version fails with HISTORY_GONE; a full refresh recovers', async () => {
  // A Spark table with a checkpoint at version 10: synced at version 5, then its older commits are cleaned up.
  const location = join(await scratchDir('pier-sync-vacuumed-'), 'table');
  await cp(tableRoot('basic-with-inserts-deletes-checkpoint'), location, { recursive: true });
  const definition: SyncDefinition = {
    location,
    sourceName: 'analytics.gold.vacuumed',
    target: { schema: 'operational', table: 'vacuumed' },
    primaryKey: ['id'],
    policy: 'TRIGGERED',
  };
  const old = await openDeltaTable(location, { version: 5 });
  await snapshotInto(client, {
    snapshot: old,
    target: definition.target,
    layout: targetLayout(old.schema, { primaryKey: ['id'] }),
  });
  for (let version = 0; version < 10; version++)
    await rm(join(location, '_delta_log', `${String(version).padStart(20, '0')}.json`));
  await assert.rejects(syncOnce(client, definition), (error: unknown) => {
    assert.ok(error instanceof SyncFailure);
    assert.equal(error.reason, 'HISTORY_GONE');
    assert.equal(error.needsFullRefresh, true);
    assert.match(error.message, /no longer has the Delta history .* Run a full refresh/);
    return true;
  });
  assert.equal((await syncOnce(client, definition, { fullRefresh: true })).kind, 'snapshot');
  await assertInSync(definition);
});

test('a dropped source is SOURCE_MISSING, keeps the rows, and heals when it is back', async () => {
  const definition = await source('dropped');
  await syncOnce(client, definition);
  const aside = `${definition.location}.aside`;
  const { rename } = await import('node:fs/promises');
  await rename(definition.location, aside);
  await assert.rejects(syncOnce(client, definition), (error: unknown) => {
    assert.ok(error instanceof SyncFailure);
    assert.equal(error.reason, 'SOURCE_MISSING');
    assert.equal(error.needsFullRefresh, false);
    return true;
  });
  const { rows } = await client.query('SELECT count(*)::int AS n FROM operational.dropped');
  assert.equal(rows[0].n, 2);
  await rename(aside, definition.location);
  assert.deepEqual(await syncOnce(client, definition), { kind: 'up-to-date', deltaVersion: 1 });
});

test('the log watcher sees a new commit within milliseconds, not a poll interval', async () => {
  const definition = await source('watched');
  let seen = 0;
  const watcher = watchDeltaLog(
    definition.location,
    () => {
      seen++;
    },
    { pollMs: 60_000 },
  );
  try {
    const started = performance.now();
    await appendRows(definition.location, [{ id: 10n, region: 'emea', revenue: 1 }]);
    while (seen === 0 && performance.now() - started < 5_000) await new Promise((r) => setTimeout(r, 5));
    assert.ok(seen > 0, 'the commit was seen');
    assert.ok(
      performance.now() - started < 1_000,
      `seen after ${Math.round(performance.now() - started)} ms`,
    );
  } finally {
    watcher.close();
  }
});
