import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type PlacementInput, placePipelines } from '../../src/sync/placement.js';

/** Three nodes on one host: a and b alive, dead is not. */
function input(overrides: Partial<PlacementInput> & Pick<PlacementInput, 'pipelines'>): PlacementInput {
  return {
    me: 'a',
    alive: new Set(['a', 'b']),
    reachable: () => true,
    running: new Set(),
    peersOnHost: 1,
    ...overrides,
  };
}

const pipeline = (id: string, node: string | null, holder: string | null = node) => ({
  id,
  node_id: node,
  holder,
});

test('a node claims its own pipelines, and never a live node’s', () => {
  const plan = placePipelines(
    input({ pipelines: [pipeline('p1', 'a'), pipeline('p2', 'b'), pipeline('p3', 'a', 'b')] }),
  );
  // p3 is a's own even while b still holds it (b hands it back): a keeps asking.
  assert.deepEqual(plan, { claim: ['p1', 'p3'], release: [], stranded: [] });
});

test('a dead node’s pipelines are claimed when their instance is in reach, and only then', () => {
  const plan = placePipelines(
    input({
      pipelines: [pipeline('p1', 'dead'), pipeline('p2', 'dead')],
      reachable: (id) => id === 'p1',
    }),
  );
  // p2 waits for its node: nobody can run it, and its status says so.
  assert.deepEqual(plan, { claim: ['p1'], release: [], stranded: ['p2'] });
});

test('an instance no node has claimed is nobody’s to take over', () => {
  assert.deepEqual(placePipelines(input({ pipelines: [pipeline('p1', null)] })), {
    claim: [],
    release: [],
    stranded: [],
  });
});

test('a taken-over pipeline is handed back once its node is alive again', () => {
  const plan = placePipelines(
    input({
      pipelines: [pipeline('p1', 'b', 'a'), pipeline('p2', 'a')],
      running: new Set(['p1', 'p2']),
    }),
  );
  assert.deepEqual(plan, { claim: ['p2'], release: ['p1'], stranded: [] });
});

test('a taken-over pipeline whose instance went out of reach is let go', () => {
  const plan = placePipelines(
    input({ pipelines: [pipeline('p1', 'dead', 'a')], running: new Set(['p1']), reachable: () => false }),
  );
  assert.deepEqual(plan, { claim: [], release: ['p1'], stranded: ['p1'] });
});

test('live nodes on one host share a dead node’s pipelines: each takes at most its share', () => {
  const pipelines = ['p1', 'p2', 'p3', 'p4', 'p5'].map((id) => pipeline(id, 'dead'));
  const first = placePipelines(input({ pipelines, peersOnHost: 2 }));
  assert.deepEqual(first.claim, ['p1', 'p2', 'p3']);
  // The other node, seeing a's three held, takes the rest rather than waiting on a's leases.
  const held = pipelines.map((p) => (first.claim.includes(p.id) ? { ...p, holder: 'a' } : p));
  const second = placePipelines(input({ me: 'b', pipelines: held, peersOnHost: 2 }));
  assert.deepEqual(second.claim, ['p4', 'p5']);
  // What a node runs already stays its own, past its share too.
  const kept = placePipelines(input({ pipelines: held, peersOnHost: 5, running: new Set(first.claim) }));
  assert.deepEqual(kept, { claim: ['p1', 'p2', 'p3'], release: [], stranded: [] });
});

test('a taken-over pipeline stays while its node is dead and its instance in reach', () => {
  const plan = placePipelines(
    input({ pipelines: [pipeline('p1', 'dead', 'a'), pipeline('p2', 'b', 'b')], running: new Set(['p1']) }),
  );
  assert.deepEqual(plan, { claim: ['p1'], release: [], stranded: [] });
});

test('a dead node’s pipeline that another live node runs is not stranded', () => {
  const plan = placePipelines(input({ pipelines: [pipeline('p1', 'dead', 'b')], reachable: () => false }));
  assert.deepEqual(plan, { claim: [], release: [], stranded: [] });
});

test('a pipeline held by a dead holder is free to take (its lease runs out)', () => {
  const plan = placePipelines(input({ pipelines: [pipeline('p1', 'dead', 'dead')] }));
  assert.deepEqual(plan.claim, ['p1']);
});
