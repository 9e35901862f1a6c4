import assert from 'node:assert/strict';
import { test } from 'node:test';
import { checkStoreIdentity } from '../../src/server/store-identity.js';

const a = '11111111-1111-4111-8111-111111111111';
const b = '22222222-2222-4222-8222-222222222222';
const base = { dataDir: '/srv/pier', storeLabel: 'embedded' };

test('a new data dir and a new store meet', () => {
  assert.deepEqual(checkStoreIdentity({ ...base, facts: { knownInstances: new Set() }, onDisk: [] }), {
    ok: true,
  });
});

test('the store this data dir recorded, knowing its instances, is accepted', () => {
  const facts = { storeId: 'S1', knownInstances: new Set([a, b]) };
  assert.deepEqual(checkStoreIdentity({ ...base, recorded: 'S1', facts, onDisk: [a] }), { ok: true });
});

test('a data dir from before store ids, or a new node, joins a store that knows what it holds', () => {
  const facts = { storeId: 'S1', knownInstances: new Set([a]) };
  assert.deepEqual(checkStoreIdentity({ ...base, facts, onDisk: [a] }), { ok: true });
  assert.deepEqual(checkStoreIdentity({ ...base, facts, onDisk: [] }), { ok: true });
  const verdict = checkStoreIdentity({ ...base, facts, onDisk: [a, b] });
  assert.equal(verdict.ok, false);
  assert.match(!verdict.ok ? verdict.message : '', /does not know 1 of the 2 instances .* \(e\.g\. 2222/);
});

test('another store, an empty store, or a store that knows no instances is refused', () => {
  const other = checkStoreIdentity({
    ...base,
    recorded: 'S1',
    facts: { storeId: 'S2', knownInstances: new Set() },
    onDisk: [],
  });
  assert.match(
    !other.ok ? other.message : '',
    /belongs to another Pier \(store id S2\), not to the data dir \/srv\/pier \(store id S1\)/,
  );
  const empty = checkStoreIdentity({
    ...base,
    recorded: 'S1',
    facts: { knownInstances: new Set() },
    onDisk: [],
  });
  assert.match(
    !empty.ok ? empty.message : '',
    /is empty, but the data dir \/srv\/pier was used with store S1\. /,
  );
  const forgot = checkStoreIdentity({ ...base, facts: { knownInstances: new Set() }, onDisk: [a] });
  assert.match(
    !forgot.ok ? forgot.message : '',
    /knows no instances, but the data dir \/srv\/pier holds 1 instance\. /,
  );
  const forgotToo = checkStoreIdentity({
    ...base,
    recorded: 'S1',
    facts: { storeId: 'S1', knownInstances: new Set() },
    onDisk: [a, b],
  });
  assert.match(
    !forgotToo.ok ? forgotToo.message : '',
    /knows no instances, but the data dir \/srv\/pier holds 2 instances/,
  );
});
