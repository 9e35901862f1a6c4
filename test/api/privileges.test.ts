import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { WorkspaceClient } from '@databricks/sdk-experimental';
import type pg from 'pg';
import {
  availableInstance,
  connectThroughProxy,
  databaseCredential,
  grantInstance,
  instanceSuperuser,
  userWithToken,
} from '../helpers/access.js';
import { api, type PierProcess, removePier, runPier, startPier } from '../helpers/pier.js';

/**
 * What a CAN_USE holder can do to an instance's roles, and that deleting a
 * role never drops what it owns. Alice creates the instance (CAN_MANAGE);
 * Mallory has CAN_USE and tries to become a superuser.
 */
let pier: PierProcess;
let alice: string;
let mallory: string;
let uid: string;
const ROLES = '/api/2.0/database/instances/shared-db/roles';

before(async () => {
  pier = await startPier();
  alice = (await userWithToken(pier, 'alice@example.com')).token;
  mallory = (await userWithToken(pier, 'mallory@example.com')).token;
  uid = await availableInstance(pier, alice, 'shared-db');
  await grantInstance(pier, alice, 'shared-db', 'mallory@example.com', 'CAN_USE');
});
after(async () => removePier(pier));

async function roleNames(): Promise<string[]> {
  const { body } = await api(pier, pier.adminToken, 'GET', ROLES);
  return (body.database_instance_roles as { name: string }[]).map((role) => role.name);
}

test('CAN_USE cannot create a role with superuser membership, attributes, another type or another name', async () => {
  const mine = 'mallory@example.com';
  const attempts: [Record<string, unknown>, RegExp][] = [
    [
      { name: mine, membership_role: 'DATABRICKS_SUPERUSER' },
      /membership_role DATABRICKS_SUPERUSER needs CAN_MANAGE/,
    ],
    [{ name: mine, attributes: { createrole: true } }, /asking for CREATEROLE needs CAN_MANAGE/],
    [{ name: mine, attributes: { createdb: true, bypassrls: true } }, /asking for CREATEDB, BYPASSRLS needs/],
    [{ name: mine, identity_type: 'PG_ONLY' }, /identity_type PG_ONLY needs CAN_MANAGE/],
    [{ name: mine, identity_type: 'GROUP' }, /identity_type GROUP needs CAN_MANAGE/],
    [{ name: mine, identity_type: 'SERVICE_PRINCIPAL' }, /identity_type SERVICE_PRINCIPAL needs/],
    [{ name: 'eve@example.com' }, /asking for a role named 'eve@example.com' needs CAN_MANAGE/],
    [{ name: 'MALLORY@example.com' }, /a role named 'MALLORY@example.com' needs CAN_MANAGE/],
  ];
  for (const [body, message] of attempts) {
    const refused = await api(pier, mallory, 'POST', ROLES, body);
    assert.equal(refused.status, 403, JSON.stringify(body));
    assert.equal(refused.body.error_code, 'PERMISSION_DENIED');
    assert.match(String(refused.body.message), message);
    assert.match(String(refused.body.message), /only a plain login role for yourself/);
  }

  // The same through the SDK and the CLI.
  const sdk = new WorkspaceClient({ host: pier.apiUrl, token: mallory, authType: 'pat' });
  await assert.rejects(
    sdk.database.createDatabaseInstanceRole({
      instance_name: 'shared-db',
      database_instance_role: { name: mine, membership_role: 'DATABRICKS_SUPERUSER' },
    }),
    (error: Error & { errorCode?: string }) =>
      error.errorCode === 'PERMISSION_DENIED' && /needs CAN_MANAGE/.test(error.message),
  );
  const cli = await runPier(
    [
      'database',
      'create-database-instance-role',
      'shared-db',
      '--json',
      JSON.stringify({ name: mine, attributes: { bypassrls: true } }),
    ],
    { DATABRICKS_HOST: pier.apiUrl, DATABRICKS_TOKEN: mallory, DATABRICKS_CONFIG_PROFILE: '' },
  );
  assert.equal(cli.code, 1);
  assert.match(cli.stderr, /asking for BYPASSRLS needs CAN_MANAGE.*\(PERMISSION_DENIED\)/);

  // Nothing was created, in the API or in Postgres.
  assert.ok(!(await roleNames()).some((name) => name.toLowerCase().includes('mallory')));
  const superuser = await instanceSuperuser(pier, uid);
  try {
    const { rowCount } = await superuser.query(`SELECT 1 FROM pg_roles WHERE rolname ILIKE '%mallory%'`);
    assert.equal(rowCount, 0);
  } finally {
    await superuser.end();
  }
});

test('CAN_USE creates its own plain login role, which holds no privilege', async () => {
  const created = await api(pier, mallory, 'POST', ROLES, {
    name: 'mallory@example.com',
    attributes: { createdb: false },
  });
  assert.equal(created.status, 200, JSON.stringify(created.body));
  assert.equal(created.body.identity_type, 'USER');
  assert.equal(created.body.membership_role, undefined);
  assert.deepEqual(created.body.effective_attributes, {
    createdb: false,
    createrole: false,
    bypassrls: false,
  });

  const { client, error } = await connectThroughProxy(
    pier,
    'shared-db',
    'mallory@example.com',
    await databaseCredential(pier, mallory, 'shared-db'),
  );
  assert.equal(error, undefined);
  try {
    const { rows } = await (client as pg.Client).query(
      `SELECT rolsuper, rolcreatedb, rolcreaterole, rolbypassrls,
              pg_has_role(current_user, 'databricks_superuser', 'MEMBER') AS member
         FROM pg_roles WHERE rolname = current_user`,
    );
    assert.deepEqual(rows[0], {
      rolsuper: false,
      rolcreatedb: false,
      rolcreaterole: false,
      rolbypassrls: false,
      member: false,
    });
  } finally {
    await client?.end();
  }

  // Deleting roles stays CAN_MANAGE's.
  const drop = await api(pier, mallory, 'DELETE', `${ROLES}/mallory@example.com`);
  assert.equal(drop.status, 403);
  assert.match(String(drop.body.message), /needs CAN_MANAGE/);
});

test('CAN_MANAGE (not an admin) may still grant membership and attributes', async () => {
  const created = await api(pier, alice, 'POST', ROLES, {
    name: 'ops@example.com',
    membership_role: 'DATABRICKS_SUPERUSER',
  });
  assert.equal(created.status, 200, JSON.stringify(created.body));
  assert.equal(created.body.membership_role, 'DATABRICKS_SUPERUSER');
  const attributes = await api(pier, alice, 'POST', ROLES, {
    name: 'loader',
    identity_type: 'GROUP',
    attributes: { createdb: true },
  });
  assert.equal(attributes.status, 200, JSON.stringify(attributes.body));
  assert.equal((attributes.body.effective_attributes as { createdb: boolean }).createdb, true);
});

test('deleting a role never drops what it owns: reassign_owned_to must name another existing role', async () => {
  const made = await api(pier, alice, 'POST', ROLES, { name: 'worker@example.com' });
  assert.equal(made.status, 200, JSON.stringify(made.body));
  // The role owns a table with rows in each database.
  for (const database of ['postgres', 'databricks_postgres']) {
    const superuser = await instanceSuperuser(pier, uid, database);
    try {
      await superuser.query('CREATE TABLE orders (id int PRIMARY KEY); INSERT INTO orders VALUES (1), (2)');
      await superuser.query('ALTER TABLE orders OWNER TO "worker@example.com"');
    } finally {
      await superuser.end();
    }
  }
  const tablesAndOwners = async () => {
    const seen: string[] = [];
    for (const database of ['postgres', 'databricks_postgres']) {
      const superuser = await instanceSuperuser(pier, uid, database);
      try {
        const { rows } = await superuser.query<{ owner: string; n: number }>(
          `SELECT tableowner AS owner, (SELECT count(*)::int FROM orders) AS n FROM pg_tables WHERE tablename = 'orders'`,
        );
        seen.push(rows.map((row) => `${database}: ${row.owner} ${row.n}`).join());
      } finally {
        await superuser.end();
      }
    }
    return seen;
  };
  const before = ['postgres: worker@example.com 2', 'databricks_postgres: worker@example.com 2'];
  assert.deepEqual(await tablesAndOwners(), before);

  const attempts: [string, RegExp][] = [
    [
      'worker@example.com',
      /names the role being deleted \('worker@example.com'\): its objects would be dropped/,
    ],
    [
      'Worker@example.com',
      /'Worker@example.com', which is not a role in 'shared-db' \(role names are case-sensitive\)/,
    ],
    ['nobody', /'nobody', which is not a role/],
    ['postgres', /cannot be 'postgres': 'postgres' is the name of Postgres' own superuser/],
    ['pg_read_all_data', /cannot be 'pg_read_all_data': names starting with 'pg_'/],
  ];
  for (const [target, message] of attempts) {
    const refused = await api(
      pier,
      alice,
      'DELETE',
      `${ROLES}/worker@example.com?reassign_owned_to=${encodeURIComponent(target)}`,
    );
    assert.equal(refused.status, 400, target);
    assert.equal(refused.body.error_code, 'INVALID_PARAMETER_VALUE');
    assert.match(String(refused.body.message), message);
    assert.match(String(refused.body.message), /Pass reassign_owned_to=databricks_superuser/);
  }
  const sdk = new WorkspaceClient({ host: pier.apiUrl, token: alice, authType: 'pat' });
  await assert.rejects(
    sdk.database.deleteDatabaseInstanceRole({
      instance_name: 'shared-db',
      name: 'worker@example.com',
      reassign_owned_to: 'worker@example.com',
    }),
    (error: Error & { errorCode?: string }) => error.errorCode === 'INVALID_PARAMETER_VALUE',
  );
  const cli = await runPier(
    [
      'database',
      'delete-database-instance-role',
      'shared-db',
      'worker@example.com',
      '--reassign-owned-to',
      'worker@example.com',
    ],
    { DATABRICKS_HOST: pier.apiUrl, DATABRICKS_TOKEN: alice, DATABRICKS_CONFIG_PROFILE: '' },
  );
  assert.equal(cli.code, 1);
  assert.match(cli.stderr, /role being deleted.*\(INVALID_PARAMETER_VALUE\)/);
  // Nothing changed: the role and its tables, rows and ownership are all there.
  assert.ok((await roleNames()).includes('worker@example.com'));
  assert.deepEqual(await tablesAndOwners(), before);

  // The SDK's spelling of the superuser role hands everything over; the rows survive.
  const deleted = await api(
    pier,
    alice,
    'DELETE',
    `${ROLES}/worker@example.com?reassign_owned_to=DATABRICKS_SUPERUSER`,
  );
  assert.equal(deleted.status, 200, JSON.stringify(deleted.body));
  assert.ok(!(await roleNames()).includes('worker@example.com'));
  assert.deepEqual(await tablesAndOwners(), [
    'postgres: databricks_superuser 2',
    'databricks_postgres: databricks_superuser 2',
  ]);
});
