import assert from 'node:assert/strict';
import { test } from 'node:test';
import { compareLsn } from '../../src/backups/lsn.js';
import type { EngineObservation, ReplicationObservation } from '../../src/engine/engine.js';
import type { InstanceSpec, InstanceTopology } from '../../src/instances/store.js';
import {
  desiredSecondaries,
  failoverReason,
  failoverTarget,
  laggingSecondaries,
  planSyncChange,
} from '../../src/reconcile/plan-nodes.js';

const spec: InstanceSpec = {
  capacity: 'CU_1',
  stopped: false,
  custom_tags: [],
  retention_window_in_days: 7,
  node_count: 3,
  enable_readable_secondaries: false,
  enable_pg_native_login: false,
  deleted: false,
};
const topology: InstanceTopology = {
  primary: 0,
  secondaries: [1, 2],
  reclone: [],
  sync: [1, 2],
  streaming: [1, 2],
  failovers: 0,
};
const crashed: EngineObservation = {
  provisioned: true,
  running: false,
  ready: false,
  shutDownCleanly: false,
};
const replication: ReplicationObservation = {
  streaming: [],
  standbys: [1, 2],
  receivedLsn: { 1: '0/3000148', 2: '1/0' },
  replayLagMs: {},
};

test('LSNs compare as 64-bit positions, past 2^53', () => {
  assert.equal(compareLsn('0/3000148', '1/0'), -1);
  assert.equal(compareLsn('FFFFFFFF/FFFFFFFF', 'FFFFFFFF/FFFFFFFE'), 1);
  assert.equal(compareLsn('16/B374D848', '16/B374D848'), 0);
});

test('secondaries are the lowest nodes that are not the primary', () => {
  assert.deepEqual(desiredSecondaries({ node_count: 2 }, { ...topology, primary: 1 }), [0]);
  assert.deepEqual(desiredSecondaries({ node_count: 3 }, { ...topology, primary: 2 }), [0, 1]);
  assert.deepEqual(desiredSecondaries({ node_count: 1 }, topology), []);
});

test('a crashed primary fails over to the most advanced synchronous standby', () => {
  assert.equal(failoverReason(spec, topology, crashed, replication), 'primary_died');
  assert.equal(failoverTarget('primary_died', topology, replication), 2);
  // Only the synchronous set may hold every acknowledged commit.
  assert.equal(failoverTarget('primary_died', { ...topology, sync: [1] }, replication), 1);
});

test('no failover without a synchronous standby, after a clean shutdown, or when stopped', () => {
  assert.equal(failoverReason(spec, { ...topology, sync: [] }, crashed, replication), undefined);
  assert.equal(failoverReason(spec, topology, { ...crashed, shutDownCleanly: true }, replication), undefined);
  assert.equal(failoverReason({ ...spec, stopped: true }, topology, crashed, replication), undefined);
  assert.equal(failoverReason(spec, topology, crashed, { ...replication, standbys: [] }), undefined);
});

test('a requested failover waits for a live primary and a standby', () => {
  const live: EngineObservation = { provisioned: true, running: true, ready: true };
  assert.equal(failoverReason({ ...spec, failover_requests: 1 }, topology, live, replication), 'requested');
  assert.equal(
    failoverReason({ ...spec, failover_requests: 1 }, { ...topology, failovers: 1 }, live, replication),
    undefined,
  );
});

test('the synchronous set: cleared before it is applied, widened before it narrows', () => {
  assert.deepEqual(planSyncChange([1], []), { kind: 'clear' });
  assert.deepEqual(planSyncChange([], [2, 1]), { kind: 'start', nodes: [1, 2] });
  assert.deepEqual(planSyncChange([1], [2]), { kind: 'change', nodes: [2] });
  assert.deepEqual(planSyncChange([2, 1], [1, 2]), { kind: 'none' });
});

test('reads skip a streaming secondary whose replay is beyond the limit, and only such a one', () => {
  assert.deepEqual(laggingSecondaries([1, 2], { 1: 45_000, 2: 3 }, 30_000), [1]);
  assert.deepEqual(
    laggingSecondaries([1, 2], { 1: 30_000 }, 30_000),
    [],
    'at the limit, or unmeasured: kept',
  );
  assert.deepEqual(laggingSecondaries([2], { 1: 90_000, 2: 90_000 }, 30_000), [2], 'streaming ones only');
});
