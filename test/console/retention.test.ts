import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { listMetricSamples, pruneMetrics } from '../../src/metrics/store.js';
import { metricPointsView } from '../../src/metrics/view.js';
import { deleteExpiredSessions } from '../../src/sessions/store.js';
import { openStore, type Store } from '../../src/store/store.js';
import { type ScratchPostgres, scratchPostgres } from '../helpers/postgres.js';

/** What the store keeps for the console: a day of samples, live sessions only (docs/console.md). */
describe('console data in the store', () => {
  let server: ScratchPostgres;
  let store: Store;
  const uid = '11111111-2222-3333-4444-555555555555';

  before(async () => {
    server = await scratchPostgres();
    const admin = await server.connect();
    await admin.query('CREATE DATABASE console');
    await admin.end();
    store = await openStore(server.url('console'));
    await store.query(
      `INSERT INTO instances (uid, name, creator, spec, state) VALUES ($1, 'kept', 'a@b.c', '{}', 'AVAILABLE')`,
      [uid],
    );
  });
  after(async () => {
    await store.close();
    await server.stop();
  });

  it('prunes samples older than a day and computes rates between the ones kept', async () => {
    // One statement: every row's now() is the same instant, so the rates are exact.
    await store.query(
      `INSERT INTO instance_metric_samples
         (instance_uid, sampled_at, connections, transactions, database_bytes, blocks_hit, blocks_read)
       VALUES ($1, now() - interval '25 hours', 3, 1, 1, 1, 1),
              ($1, now() - interval '30 seconds', 3, 9007199254740000, 9007199254740993, 900, 100),
              ($1, now() - interval '15 seconds', 3, 9007199254740150, 9007199254740993, 1890, 110)`,
      [uid],
    );
    assert.equal(await pruneMetrics(store), 1);
    const kept = await listMetricSamples(store, uid, 24 * 60);
    assert.equal(kept.length, 2);
    const { points } = metricPointsView(kept);
    assert.equal(points[0].transactions_per_second, null);
    assert.equal(points[1].transactions_per_second, 10);
    assert.equal(points[1].cache_hit_ratio, 0.99);
    // Sizes past 2^53 stay exact: they leave as text.
    assert.equal(points[1].database_size_bytes, '9007199254740993');
  });

  it('deletes expired sessions and keeps live ones', async () => {
    const { rows } = await store.query<{ id: string }>(
      `INSERT INTO identities (user_name) VALUES ('s@b.c') RETURNING id::text`,
    );
    await store.query(
      `INSERT INTO personal_access_tokens (token_id, identity_id, token_hash) VALUES ('t1', $1, 'h1')`,
      [rows[0].id],
    );
    await store.query(
      `INSERT INTO console_sessions (id_hash, token_id, csrf_token, expires_at)
       VALUES ('old', 't1', 'c', now() - interval '1 second'), ('live', 't1', 'c', now() + interval '1 hour')`,
    );
    assert.equal(await deleteExpiredSessions(store), 1);
    const left = await store.query<{ id_hash: string }>('SELECT id_hash FROM console_sessions');
    assert.deepEqual(
      left.rows.map((r) => r.id_hash),
      ['live'],
    );
  });
});
