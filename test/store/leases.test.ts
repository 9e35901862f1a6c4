import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { claimLeases, forgetLease, offerLeases, releaseLease, renewLease } from '../../src/store/leases.js';
import { openStore, type Store } from '../../src/store/store.js';
import { type ScratchPostgres, scratchPostgres } from '../helpers/postgres.js';

describe('leases', () => {
  let server: ScratchPostgres;
  let one: Store;
  let two: Store;

  before(async () => {
    server = await scratchPostgres();
    const admin = await server.connect();
    await admin.query('CREATE DATABASE leases');
    await admin.end();
    // Two stores on one database: two Pier processes sharing it.
    one = await openStore(server.url('leases'));
    two = await openStore(server.url('leases'));
  });
  after(async () => {
    await one.close();
    await two.close();
    await server.stop();
  });

  it('gives each key to one of two claimers at once, never to both, and neither waits', async () => {
    const keys = Array.from({ length: 40 }, (_, i) => `k${String(i).padStart(2, '0')}`);
    await offerLeases(one, 'race', keys);
    // Both claim at the same moment, in transactions held open a while: the
    // second skips the rows the first has locked instead of waiting for them.
    const claim = (store: Store, holder: string) =>
      store.transaction(async (tx) => {
        const started = Date.now();
        const got = await claimLeases(tx, 'race', holder, { ttlMs: 60_000, limit: 25 });
        const waited = Date.now() - started;
        await sleep(300);
        return { got, waited };
      });
    const [a, b] = await Promise.all([claim(one, 'a'), claim(two, 'b')]);
    assert.equal(a.got.filter((key) => b.got.includes(key)).length, 0, 'no key held twice');
    assert.equal(a.got.length + b.got.length, keys.length, 'every key claimed by someone');
    assert.ok(a.waited < 250 && b.waited < 250, `no claimer waited (${a.waited} ms, ${b.waited} ms)`);
    // A held lease is not claimable by another holder, but is by its own.
    assert.deepEqual(await claimLeases(two, 'race', 'b', { keys: [a.got[0]], ttlMs: 60_000 }), []);
    assert.deepEqual(await claimLeases(one, 'race', 'a', { keys: [a.got[0]], ttlMs: 60_000 }), [a.got[0]]);
  });

  it('frees a lease when it expires, and a released one at once', async () => {
    assert.deepEqual(await claimLeases(one, 'expiry', 'a', { keys: ['x', 'y'], ttlMs: 200 }), ['x', 'y']);
    assert.deepEqual(await claimLeases(two, 'expiry', 'b', { keys: ['x'], ttlMs: 200 }), []);
    await releaseLease(one, 'expiry', 'y', 'a');
    assert.deepEqual(await claimLeases(two, 'expiry', 'b', { keys: ['y'], ttlMs: 60_000 }), ['y']);
    await sleep(300);
    // Without keys: every free lease of the resource (the expired one) and those it holds.
    assert.deepEqual(await claimLeases(two, 'expiry', 'b', { ttlMs: 60_000 }), ['x', 'y']);
  });

  it('renews only for its holder, and not once another took it over', async () => {
    assert.deepEqual(await claimLeases(one, 'renew', 'a', { keys: ['r'], ttlMs: 300 }), ['r']);
    for (let i = 0; i < 3; i++) {
      await sleep(150);
      assert.equal(await renewLease(one, 'renew', 'r', 'a', 300), true, 'renewed in time');
    }
    assert.deepEqual(await claimLeases(two, 'renew', 'b', { keys: ['r'], ttlMs: 300 }), [], 'still held');
    assert.equal(await renewLease(two, 'renew', 'r', 'b', 300), false, 'not the holder');
    await sleep(400);
    assert.deepEqual(await claimLeases(two, 'renew', 'b', { keys: ['r'], ttlMs: 60_000 }), ['r']);
    assert.equal(await renewLease(one, 'renew', 'r', 'a', 300), false, 'taken over after expiry');
    await forgetLease(two, 'renew', 'r');
    assert.equal(await renewLease(two, 'renew', 'r', 'b', 300), false, 'gone with its work');
  });
});
