import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { WorkspaceClient } from '@databricks/sdk-experimental';
import pg from 'pg';
import {
  availableInstance,
  connectThroughProxy,
  databaseCredential,
  grantInstance,
  userWithToken,
} from '../helpers/access.js';
import { api, eventually, type PierProcess, removePier, runPier, startPier } from '../helpers/pier.js';

/**
 * Identities and the names they log in with: reserved names are refused
 * wherever a name enters, and deleting a user leaves nothing a later user of
 * the same name could pick up.
 */
let pier: PierProcess;
const USERS = '/api/2.0/preview/scim/v2/Users';
const RESERVED = [
  'postgres',
  'Postgres',
  'POSTGRES',
  'databricks_superuser',
  'DATABRICKS_SUPERUSER',
  'databricks_writer_16384',
  'databricks_reader_16384',
  'databricks_monitor',
  'pg_execute_server_program',
  'pg_read_server_files',
  'PG_MONITOR',
  'public',
  'none',
];

before(async () => {
  pier = await startPier();
  // With Postgres password login on: an identity's own password must not outlive the identity.
  await availableInstance(pier, pier.adminToken, 'team-db', { enable_pg_native_login: true });
});
after(async () => removePier(pier));

/** The embedded store, as a Pier from before reserved names were checked would have left it. */
async function storeClient(): Promise<pg.Client> {
  const client = new pg.Client({
    host: join(pier.dataDir, 'run', 'store'),
    port: 5432,
    user: 'postgres',
    database: 'pier',
  });
  await client.connect();
  return client;
}

/** The user creates their own role on team-db and logs in with a fresh credential, which is returned. */
async function ownRoleLogsIn(token: string, userName: string): Promise<string> {
  const role = await api(pier, token, 'POST', '/api/2.0/database/instances/team-db/roles', {
    name: userName,
  });
  assert.equal(role.status, 200, JSON.stringify(role.body));
  const credential = await databaseCredential(pier, token, 'team-db');
  const working = await connectThroughProxy(pier, 'team-db', userName, credential);
  assert.equal(working.error, undefined);
  await working.client?.end();
  return credential;
}

test('reserved names cannot become users, roles or grantees', async () => {
  const before = (await api(pier, pier.adminToken, 'GET', USERS)).body.totalResults;
  for (const userName of RESERVED) {
    const refused = await api(pier, pier.adminToken, 'POST', USERS, { userName });
    assert.equal(refused.status, 400, userName);
    assert.equal(refused.body.error_code, 'INVALID_PARAMETER_VALUE');
    assert.match(
      String(refused.body.message),
      new RegExp(`userName '${userName}' is reserved: .*Choose another name`),
    );
  }
  const sdk = new WorkspaceClient({ host: pier.apiUrl, token: pier.adminToken, authType: 'pat' });
  await assert.rejects(
    sdk.usersV2.create({ userName: 'postgres' }),
    (error: Error & { errorCode?: string }) =>
      error.errorCode === 'INVALID_PARAMETER_VALUE' && /Postgres' own superuser/.test(error.message),
  );
  assert.equal(
    (await api(pier, pier.adminToken, 'GET', USERS)).body.totalResults,
    before,
    'no user was made',
  );

  for (const name of RESERVED) {
    const role = await api(pier, pier.adminToken, 'POST', '/api/2.0/database/instances/team-db/roles', {
      name,
      identity_type: 'USER',
    });
    assert.equal(role.status, 400, name);
    assert.match(String(role.body.message), new RegExp(`Role name '${name}' is reserved`));
  }
  for (const entry of [
    { service_principal_name: 'postgres', permission_level: 'CAN_USE' },
    { group_name: 'pg_monitor', permission_level: 'CAN_MANAGE' },
  ]) {
    const acl = await api(pier, pier.adminToken, 'PATCH', '/api/2.0/permissions/database-instances/team-db', {
      access_control_list: [entry],
    });
    assert.equal(acl.status, 400);
    assert.match(String(acl.body.message), /cannot be granted anything/);
  }
  const acl = await api(pier, pier.adminToken, 'GET', '/api/2.0/permissions/database-instances/team-db');
  assert.deepEqual(
    (acl.body.access_control_list as { user_name?: string }[]).flatMap((e) =>
      e.user_name ? [e.user_name] : [],
    ),
    ['admin@pier.local'],
  );
});

test('a user named postgres left in the store gets no database credential', async () => {
  const store = await storeClient();
  try {
    await store.query(`INSERT INTO identities (user_name) VALUES ('postgres')`);
  } finally {
    await store.end();
  }
  const token = await api(pier, pier.adminToken, 'POST', '/api/2.0/token-management/on-behalf-of/tokens', {
    application_id: 'postgres',
  });
  assert.equal(token.status, 200);
  const pat = token.body.token_value as string;
  const refused = await api(pier, pat, 'POST', '/api/2.0/database/credentials', {
    instance_names: ['team-db'],
  });
  assert.equal(refused.status, 403);
  assert.equal(refused.body.error_code, 'PERMISSION_DENIED');
  assert.match(String(refused.body.message), /No database credential can be issued to postgres/);
  const cli = await runPier(
    ['database', 'generate-database-credential', '--json', '{"instance_names": ["team-db"]}'],
    { DATABRICKS_HOST: pier.apiUrl, DATABRICKS_TOKEN: pat, DATABRICKS_CONFIG_PROFILE: '' },
  );
  assert.equal(cli.code, 1);
  assert.match(cli.stderr, /No database credential can be issued to postgres.*\(PERMISSION_DENIED\)/);
});

test('a deleted user leaves no permission, grant or ownership behind, and its credentials stop working', async () => {
  const UC = '/api/2.1/unity-catalog';
  const dana = await userWithToken(pier, 'dana@example.com');
  await grantInstance(pier, pier.adminToken, 'team-db', 'dana@example.com', 'CAN_MANAGE');
  // Dana owns a catalog and a schema in it, and holds USE CATALOG on another.
  assert.equal((await api(pier, pier.adminToken, 'POST', `${UC}/catalogs`, { name: 'sales' })).status, 200);
  const owned = await api(pier, pier.adminToken, 'PATCH', `${UC}/catalogs/sales`, {
    owner: 'dana@example.com',
  });
  assert.equal(owned.status, 200, JSON.stringify(owned.body));
  const schema = await api(pier, dana.token, 'POST', `${UC}/schemas`, { name: 'q1', catalog_name: 'sales' });
  assert.equal(schema.status, 200, JSON.stringify(schema.body));
  assert.equal((await api(pier, pier.adminToken, 'POST', `${UC}/catalogs`, { name: 'shared' })).status, 200);
  const granted = await api(pier, pier.adminToken, 'PATCH', `${UC}/permissions/catalog/shared`, {
    changes: [{ principal: 'dana@example.com', add: ['USE_CATALOG'] }],
  });
  assert.equal(granted.status, 200, JSON.stringify(granted.body));

  const oldCredential = await ownRoleLogsIn(dana.token, 'dana@example.com');
  // Any role may set its own Postgres password; an identity's never logs in, now or later.
  const session = await connectThroughProxy(pier, 'team-db', 'dana@example.com', oldCredential);
  const client = session.client as pg.Client;
  await client.query(`ALTER ROLE CURRENT_USER PASSWORD 'keep me'`);
  await assert.rejects(client.query(`ALTER ROLE CURRENT_USER VALID UNTIL 'infinity'`), /permission denied/);
  await client.end();
  const ownPassword = async () =>
    (await connectThroughProxy(pier, 'team-db', 'dana@example.com', 'keep me')).error;
  assert.equal((await ownPassword())?.code, '28P01');

  const deleted = await api(pier, pier.adminToken, 'DELETE', `${USERS}/${dana.id}`);
  assert.equal(deleted.status, 204);

  // Her credential is refused at once; her personal access token too.
  const refused = await connectThroughProxy(pier, 'team-db', 'dana@example.com', oldCredential);
  assert.equal(refused.error?.code, '28P01');
  assert.match(String(refused.error?.message), /deleted or deactivated/);
  assert.equal((await api(pier, dana.token, 'GET', `${USERS.replace('Users', 'Me')}`)).status, 401);
  assert.equal((await ownPassword())?.code, '28P01');

  // A new user of the same name inherits nothing.
  const again = await userWithToken(pier, 'dana@example.com');
  assert.notEqual(again.id, dana.id);
  const instance = await api(pier, again.token, 'GET', '/api/2.0/database/instances/team-db');
  assert.equal(instance.status, 404);
  assert.equal(instance.body.error_code, 'RESOURCE_DOES_NOT_EXIST');
  const acl = await api(pier, pier.adminToken, 'GET', '/api/2.0/permissions/database-instances/team-db');
  assert.ok(!JSON.stringify(acl.body).includes('dana@example.com'), 'no instance permission left');
  const catalog = await api(pier, pier.adminToken, 'GET', `${UC}/catalogs/sales`);
  assert.equal(catalog.body.owner, 'admin@pier.local', 'ownership passed to the admin who deleted her');
  assert.equal(
    (await api(pier, pier.adminToken, 'GET', `${UC}/schemas/sales.q1`)).body.owner,
    'admin@pier.local',
  );
  const shared = await api(pier, pier.adminToken, 'GET', `${UC}/permissions/catalog/shared`);
  assert.deepEqual(shared.body.privilege_assignments ?? [], [], 'no grant left');
  const seen = await api(pier, again.token, 'GET', `${UC}/catalogs/sales`);
  assert.equal(seen.status, 403);

  // The old credential names the old identity: still refused, though "dana@example.com" exists again.
  const stillRefused = await connectThroughProxy(pier, 'team-db', 'dana@example.com', oldCredential);
  assert.equal(stillRefused.error?.code, '28P01');
  assert.match(String(stillRefused.error?.message), /deleted or deactivated/);

  // Once granted again, the new Dana logs in with a credential of her own.
  await grantInstance(pier, pier.adminToken, 'team-db', 'dana@example.com', 'CAN_USE');
  const fresh = await connectThroughProxy(
    pier,
    'team-db',
    'dana@example.com',
    await databaseCredential(pier, again.token, 'team-db'),
  );
  assert.equal(fresh.error, undefined);
  await fresh.client?.end();
});

test('an identity deleted by another Pier sharing the store stops logging in within a refresh', async () => {
  const erin = await userWithToken(pier, 'erin@example.com');
  await grantInstance(pier, pier.adminToken, 'team-db', 'erin@example.com', 'CAN_USE');
  const credential = await ownRoleLogsIn(erin.token, 'erin@example.com');

  // As another process would: straight in the store, without this Pier hearing of it.
  const store = await storeClient();
  try {
    await store.query('DELETE FROM identities WHERE id = $1', [erin.id]);
  } finally {
    await store.end();
  }
  const startedAt = Date.now();
  const refused = await eventually(
    async () => {
      const attempt = await connectThroughProxy(pier, 'team-db', 'erin@example.com', credential);
      await attempt.client?.end();
      return attempt.error;
    },
    5_000,
    'the credential refused',
  );
  assert.equal(refused.code, '28P01');
  assert.match(refused.message, /deleted or deactivated/);
  assert.ok(Date.now() - startedAt < 3_000, 'within one 2 s refresh');
});

test("the instance creator's own Postgres password does not log in either", async () => {
  const credential = await databaseCredential(pier, pier.adminToken, 'team-db');
  const session = await connectThroughProxy(pier, 'team-db', 'admin@pier.local', credential);
  assert.equal(session.error, undefined);
  try {
    await session.client?.query(`ALTER ROLE CURRENT_USER PASSWORD 'creator pw'`);
  } finally {
    await session.client?.end();
  }
  const refused = await connectThroughProxy(pier, 'team-db', 'admin@pier.local', 'creator pw');
  assert.equal(refused.error?.code, '28P01');
  assert.match(String(refused.error?.message), /password authentication failed for user "admin@pier.local"/);
});
