import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { openDeltaTable, readChanges } from '../../src/delta/index.js';
import { advanceDemoTable, createDemoTable } from '../../src/lakehouse/demo.js';
import { scratchDirectories } from '../helpers/scratch.js';
import { collect } from './expected.js';

/** Temporary directories this file makes, removed when it ends. */
const scratchDir = scratchDirectories();

describe('Delta writer and the daily_revenue demo table', () => {
  it('creates a CDF-enabled table that reads back', async () => {
    const dir = join(await scratchDir('pier-demo-'), 'daily_revenue');
    assert.equal(await createDemoTable(dir), 1);
    const snapshot = await openDeltaTable(dir);
    assert.equal(snapshot.protocol.minReaderVersion, 1);
    assert.equal(snapshot.protocol.minWriterVersion, 4);
    assert.equal(snapshot.metadata.configuration['delta.enableChangeDataFeed'], 'true');
    assert.deepEqual(
      snapshot.schema.fields.map((f) => f.name),
      ['day', 'region', 'orders', 'revenue'],
    );
    const rows = await collect(snapshot.scan());
    assert.equal(rows.length, 21);
    const first = rows.find((r) => r.day === '2024-01-01' && r.region === 'emea');
    assert.deepEqual(first, { day: '2024-01-01', region: 'emea', orders: 40n, revenue: '799.60' });
    const add = snapshot.files[0];
    assert.equal(JSON.parse(add.stats!).numRecords, 21);
    await assert.rejects(createDemoTable(dir), /Another writer committed version 0/);
  });

  it('advances with inserts, updates and a delete, visible in the snapshot and the change data feed', async () => {
    const dir = join(await scratchDir('pier-demo-'), 'daily_revenue');
    await createDemoTable(dir);
    assert.equal(await advanceDemoTable(dir), 2);
    const rows = await collect((await openDeltaTable(dir)).scan());
    assert.equal(rows.length, 21 + 3 - 1);
    assert.ok(rows.some((r) => r.day === '2024-01-08'));
    assert.ok(!rows.some((r) => r.day === '2024-01-01' && r.region === 'apac'));
    const changes = await collect(await readChanges(dir, 2));
    const count = (type: string) => changes.filter((r) => r._change_type === type).length;
    assert.deepEqual(
      [count('insert'), count('update_preimage'), count('update_postimage'), count('delete')],
      [3, 2, 2, 1],
    );
    const pre = changes.find((r) => r._change_type === 'update_preimage' && r.region === 'emea')!;
    const post = changes.find((r) => r._change_type === 'update_postimage' && r.region === 'emea')!;
    assert.equal(pre.day, '2024-01-07');
    assert.notEqual(pre.revenue, post.revenue);
    assert.ok(changes.every((r) => r._commit_version === 2n));
    const commit = await readFile(join(dir, '_delta_log', '00000000000000000002.json'), 'utf8');
    assert.match(commit, /"cdc":\{"path":"_change_data\/cdc-/);
    assert.equal(await advanceDemoTable(dir), 3);
    const all = await collect(await readChanges(dir, 0));
    assert.equal(all.filter((r) => r._commit_version === 1n).length, 21);
  });
});

describe('writer statistics', () => {
  it('keep 64-bit min and max exact, so a reader skipping files by them finds every row', async () => {
    const { appendRows, createTable } = await import('../../src/delta/writer.js');
    const location = join(await scratchDir('pier-writer-stats-'), 't');
    await createTable(location, {
      type: 'struct',
      fields: [{ name: 'id', type: { type: 'long' }, nullable: false, metadata: {} }],
    });
    await appendRows(location, [{ id: 9007199254740993n }, { id: -9007199254740993n }]);
    const [add] = (await openDeltaTable(location)).files;
    assert.equal(
      add.stats,
      '{"numRecords":2,"minValues":{"id":-9007199254740993},"maxValues":{"id":9007199254740993},"nullCount":{"id":0}}',
    );
  });
});
