import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { openMasterKey, SigningKeys } from '../../src/access/signing-keys.js';
import { ActiveIdentities } from '../../src/auth/active-identities.js';
import { deleteIdentity, insertIdentity } from '../../src/identities/store.js';
import { InstanceDirectory } from '../../src/instances/directory.js';
import { type InstanceSpec, insertInstance, updateInstanceSpec } from '../../src/instances/store.js';
import { followChanges, StoreChanges } from '../../src/store/notifications.js';
import { openStore, type Store } from '../../src/store/store.js';
import { eventually, tempDataDir } from '../helpers/pier.js';
import { type ScratchPostgres, scratchPostgres } from '../helpers/postgres.js';

/** Far beyond any test: only a notification can refresh a cache in time. */
const NO_POLL_MS = 10 * 60_000;
/** "Well within" the old polls (2 s for identities and routes, 10 s for signing keys). */
const WITHIN_MS = 1000;

describe('caches follow changes made by another Pier process sharing the store', () => {
  let server: ScratchPostgres;
  let keysDir: string;
  let here: Store;
  let there: Store;
  let changes: StoreChanges;
  const stops: (() => void)[] = [];

  before(async () => {
    server = await scratchPostgres();
    const admin = await server.connect();
    await admin.query('CREATE DATABASE shared');
    await admin.end();
    keysDir = await tempDataDir('pier-keys-');
    here = await openStore(server.url('shared'));
    there = await openStore(server.url('shared'));
    changes = await StoreChanges.listen(here.url);
  });
  after(async () => {
    for (const stop of stops) stop();
    await changes.close();
    await here.close();
    await there.close();
    await server.stop();
    await rm(keysDir, { recursive: true, force: true });
  });

  it('sees a signing key rotated elsewhere at once', async () => {
    const masterKey = await openMasterKey(here, keysDir);
    const options = { masterKey, tokenLifetimeSeconds: 3600 };
    const mine = new SigningKeys(here, options);
    await mine.start(NO_POLL_MS);
    stops.push(() => mine.stop());
    stops.push(
      followChanges(changes, 'signingKeys', () => mine.reload(), { pollMs: NO_POLL_MS, kind: 'test' }),
    );
    const theirs = new SigningKeys(there, options);
    await theirs.start(NO_POLL_MS);
    stops.push(() => theirs.stop());

    const rotated = await theirs.rotate();
    const started = Date.now();
    await eventually(
      async () => (mine.jwks().keys.some((key) => key.kid === rotated.kid) ? true : undefined),
      WITHIN_MS,
      'the rotated key in this process',
    );
    assert.equal(mine.current().kid, rotated.kid, 'the new key signs here too');
    assert.ok(Date.now() - started < WITHIN_MS);
  });

  it('refuses an identity deleted elsewhere at once', async () => {
    const identities = new ActiveIdentities(here);
    stops.push(
      followChanges(changes, 'identities', () => identities.refresh(), { pollMs: NO_POLL_MS, kind: 'test' }),
    );
    const jane = await insertIdentity(there, { userName: 'jane@example.com', isAdmin: false });
    await identities.refresh();
    assert.equal(await identities.isActive(jane.id, 'jane@example.com'), true);

    await deleteIdentity(there, jane.id);
    await eventually(
      async () => ((await identities.isActive(jane.id, 'jane@example.com')) ? undefined : true),
      WITHIN_MS,
      'the deletion to reach this process',
    );
  });

  it("updates the proxy's routing table for an instance changed elsewhere at once", async () => {
    const nodeId = randomUUID();
    const config = { nodeId, maxInstances: 10, credentialTtlSeconds: 3600 };
    const directory = new InstanceDirectory(
      here,
      {
        socketDir: (uid) => join(keysDir, uid),
        nodeSocketDir: (uid, node) => join(keysDir, `${uid}.node-${node}`),
      },
      config,
      async () => {},
    );
    await directory.refresh();
    stops.push(
      followChanges(changes, 'instances', () => directory.refresh(), { pollMs: NO_POLL_MS, kind: 'test' }),
    );
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
    const row = await insertInstance(there, {
      uid: randomUUID(),
      name: 'routed-db',
      creator: 'admin@pier.local',
      spec,
      address: null,
      nodeId,
    });
    await eventually(
      async () => (directory.byName('routed-db')?.state === 'STARTING' ? true : undefined),
      WITHIN_MS,
      'the new instance in the routing table',
    );
    // A deletion asked through another process: routed as DELETING before any reconciler acts.
    await updateInstanceSpec(there, row.uid, { ...spec, deleted: true });
    await eventually(
      async () => (directory.byName('routed-db')?.state === 'DELETING' ? true : undefined),
      WITHIN_MS,
      'the deletion in the routing table',
    );
  });
});
