import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { InstanceSpec, InstanceStatus } from '../../src/instances/store.js';
import { planInstance } from '../../src/reconcile/plan.js';

const spec: InstanceSpec = {
  capacity: 'CU_1',
  stopped: false,
  custom_tags: [],
  retention_window_in_days: 7,
  node_count: 1,
  enable_readable_secondaries: false,
  enable_pg_native_login: false,
  deleted: false,
};
const applied: InstanceStatus = { applied_capacity: 'CU_1', roles_ready: true, wal_archiving: true };
const running = { provisioned: true, running: true, ready: true };
const down = { provisioned: true, running: false, ready: false };
const absent = { provisioned: false, running: false, ready: false };

test('a new instance is provisioned, configured, started and given its roles', () => {
  assert.deepEqual(planInstance(spec, {}, absent), {
    steps: ['provision', 'configure', 'start', 'bootstrap-roles'],
    progress: 'STARTING',
    done: 'AVAILABLE',
  });
});

test('a new instance created stopped is provisioned and configured, never started', () => {
  assert.deepEqual(planInstance({ ...spec, stopped: true }, {}, absent), {
    steps: ['provision', 'configure'],
    progress: 'STARTING',
    done: 'STOPPED',
  });
});

test('an instance that is as asked needs nothing', () => {
  assert.deepEqual(planInstance(spec, applied, running), {
    steps: [],
    progress: 'AVAILABLE',
    done: 'AVAILABLE',
  });
});

test('a server that died is started again', () => {
  assert.deepEqual(planInstance(spec, applied, down).steps, ['start']);
  assert.equal(planInstance(spec, applied, down).progress, 'STARTING');
});

test('a server still starting is waited for, not started twice', () => {
  assert.equal(
    planInstance(spec, applied, { provisioned: true, running: true, ready: false }).waitForReady,
    true,
  );
});

test('stopping shows UPDATING until the server is gone', () => {
  assert.deepEqual(planInstance({ ...spec, stopped: true }, applied, running), {
    steps: ['stop'],
    progress: 'UPDATING',
    done: 'STOPPED',
  });
  assert.deepEqual(planInstance({ ...spec, stopped: true }, applied, down).steps, []);
});

test('a resize of a running instance reconfigures and restarts; of a stopped one only reconfigures', () => {
  const bigger = { ...spec, capacity: 'CU_4' as const };
  assert.deepEqual(planInstance(bigger, applied, running), {
    steps: ['configure', 'restart'],
    progress: 'UPDATING',
    done: 'AVAILABLE',
  });
  assert.deepEqual(planInstance({ ...bigger, stopped: true }, applied, down).steps, ['configure']);
});

test('the creator role is made if an earlier pass died before making it', () => {
  assert.deepEqual(planInstance(spec, { applied_capacity: 'CU_1', wal_archiving: true }, running).steps, [
    'bootstrap-roles',
  ]);
});

test('a server started before WAL archiving was always on is restarted once to turn it on', () => {
  const plan = planInstance(spec, { applied_capacity: 'CU_1', roles_ready: true }, running);
  assert.deepEqual(plan.steps, ['configure', 'restart']);
  assert.equal(plan.progress, 'UPDATING');
  assert.deepEqual(planInstance(spec, applied, running).steps, []);
});

test('a deleted instance is destroyed then forgotten, or just forgotten if nothing is left', () => {
  assert.deepEqual(planInstance({ ...spec, deleted: true }, applied, running).steps, ['destroy', 'forget']);
  assert.deepEqual(planInstance({ ...spec, deleted: true }, applied, absent).steps, ['forget']);
  assert.equal(planInstance({ ...spec, deleted: true }, applied, running).progress, 'DELETING');
});

test('storage that went missing under a known instance is FAILED, never made anew and empty', () => {
  for (const status of [{ ...applied, provisioned: true }, applied, { applied_capacity: 'CU_1' as const }]) {
    for (const wanted of [spec, { ...spec, stopped: true }]) {
      const plan = planInstance(wanted, status, absent);
      assert.deepEqual(plan.steps, []);
      assert.equal(plan.progress, 'FAILED');
      assert.equal(plan.done, 'FAILED');
      assert.match(plan.message ?? '', /data directory is missing.*restore.*or delete the instance/);
    }
  }
  // Deleting it is still possible: there is nothing left to destroy, so it is only forgotten.
  assert.deepEqual(planInstance({ ...spec, deleted: true }, { provisioned: true }, absent).steps, ['forget']);
  // A pass that died before storage was made at all provisions, as for a new instance.
  assert.deepEqual(planInstance(spec, { roles_ready: false }, absent).steps, [
    'provision',
    'configure',
    'start',
    'bootstrap-roles',
  ]);
});
