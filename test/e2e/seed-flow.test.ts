import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { WorkspaceClient } from '@databricks/sdk-experimental';
import { decodeJwt } from 'jose';
import pg from 'pg';
import { api, type PierProcess, removePier, startPier } from '../helpers/pier.js';

const execFileAsync = promisify(execFile);

let pier: PierProcess;
let w: WorkspaceClient;
let ca: string;

before(async () => {
  // Short-lived credentials so the refresh test sees several expiries.
  pier = await startPier({ args: ['--credential-ttl', '5'] });
  w = new WorkspaceClient({ host: pier.apiUrl, token: pier.adminToken, authType: 'pat' });
  ca = readFileSync(pier.caCertPath!, 'utf8');
});
after(async () => removePier(pier));

/** A client of an instance through Pier's proxy, TLS verified against Pier's CA. */
function proxyClient(host: string | undefined, user: string, password: string | undefined): pg.Client {
  return new pg.Client({ host, port: pier.proxyPort, database: 'postgres', user, password, ssl: { ca } });
}

/** The seed document's flow: create, credential, connect with sslmode=require, SELECT version(). */
test('the seed flow: SDK creates an instance and a credential, node-postgres connects over TLS', async () => {
  const instance = await (
    await w.database.createDatabaseInstance({
      database_instance: { name: 'order-mgmt-db', capacity: 'CU_2', stopped: false },
    })
  ).wait();
  assert.equal(instance.state, 'AVAILABLE');
  const cred = await w.database.generateDatabaseCredential({
    request_id: randomUUID(),
    instance_names: ['order-mgmt-db'],
  });
  assert.ok(Date.parse(cred.expiration_time!) > Date.now());
  const me = await w.currentUser.me();
  const client = new pg.Client({
    host: instance.read_write_dns,
    port: pier.proxyPort,
    database: 'postgres',
    user: me.userName,
    password: cred.token,
    ssl: { ca, rejectUnauthorized: true, servername: undefined },
  });
  await client.connect();
  const { rows } = await client.query('SELECT version() AS v, current_user AS u');
  assert.match(rows[0].v, /^PostgreSQL 18/);
  assert.equal(rows[0].u, 'admin@pier.local');
  // The creator is a databricks_superuser: may create schemas and tables.
  await client.query('CREATE TABLE feature_flags (name text PRIMARY KEY, enabled boolean)');
  await client.query(`INSERT INTO feature_flags VALUES ('dark-mode', true)`);
  await client.end();
});

test('psql with sslmode=verify-full and Python psycopg connect the same way', async () => {
  const instance = await w.database.getDatabaseInstance({ name: 'order-mgmt-db' });
  const { token } = await w.database.generateDatabaseCredential({
    request_id: randomUUID(),
    instance_names: ['order-mgmt-db'],
  });
  const conninfo = `host=${instance.read_write_dns} port=${pier.proxyPort} dbname=postgres user=admin@pier.local sslmode=verify-full sslrootcert=${pier.caCertPath}`;
  const psql = await execFileAsync('psql', [conninfo, '-tAc', 'SELECT name FROM feature_flags'], {
    env: { ...process.env, PGPASSWORD: token },
  });
  assert.equal(psql.stdout.trim(), 'dark-mode');

  const script = `import psycopg, sys
with psycopg.connect(sys.argv[1], password=sys.argv[2]) as conn:
    with conn.cursor() as cur:
        cur.execute("SELECT version()")
        print(cur.fetchone()[0])`;
  const python = await execFileAsync('/usr/bin/python3', [
    '-c',
    script,
    conninfo.replace('verify-full', 'require'),
    token!,
  ]);
  assert.match(python.stdout, /^PostgreSQL 18/);
});

test('request_id is idempotent per caller and private to it', async () => {
  const requestId = randomUUID();
  const first = await api(pier, pier.adminToken, 'POST', '/api/2.0/database/credentials', {
    request_id: requestId,
    instance_names: ['order-mgmt-db'],
  });
  const second = await api(pier, pier.adminToken, 'POST', '/api/2.0/database/credentials', {
    request_id: requestId,
    instance_names: ['order-mgmt-db'],
  });
  assert.equal(first.status, 200);
  assert.equal(second.body.token, first.body.token);
  await api(pier, pier.adminToken, 'POST', '/api/2.0/preview/scim/v2/Users', {
    userName: 'carol@example.com',
  });
  const carol = (
    await api(pier, pier.adminToken, 'POST', '/api/2.0/token-management/on-behalf-of/tokens', {
      application_id: 'carol@example.com',
    })
  ).body.token_value as string;
  // Carol has no permission on the instance: she cannot get a credential for it at all…
  const denied = await api(pier, carol, 'POST', '/api/2.0/database/credentials', {
    request_id: randomUUID(),
    instance_names: ['order-mgmt-db'],
  });
  assert.equal(denied.status, 404);
  await api(pier, pier.adminToken, 'PATCH', '/api/2.0/permissions/database-instances/order-mgmt-db', {
    access_control_list: [{ user_name: 'carol@example.com', permission_level: 'CAN_USE' }],
  });
  // …and with CAN_USE, replaying the admin's request_id gets her a token of her own, not the admin's.
  const replay = await api(pier, carol, 'POST', '/api/2.0/database/credentials', {
    request_id: requestId,
    instance_names: ['order-mgmt-db'],
  });
  assert.equal(replay.status, 200);
  assert.notEqual(replay.body.token, first.body.token);
  assert.equal(decodeJwt(replay.body.token as string).sub, 'carol@example.com');
  const missing = await api(pier, pier.adminToken, 'POST', '/api/2.0/database/credentials', {
    request_id: randomUUID(),
  });
  assert.equal(missing.status, 400);
  assert.match(String(missing.body.message), /instance_names is required/);
});

test('the roles API creates roles that log in through the proxy', async () => {
  // Carol (CAN_USE) may create her own role only.
  const carol = (
    await api(pier, pier.adminToken, 'POST', '/api/2.0/token-management/on-behalf-of/tokens', {
      application_id: 'carol@example.com',
    })
  ).body.token_value as string;
  const other = await api(pier, carol, 'POST', '/api/2.0/database/instances/order-mgmt-db/roles', {
    name: 'mallory@example.com',
    identity_type: 'USER',
  });
  assert.equal(other.status, 403);
  const own = await api(pier, carol, 'POST', '/api/2.0/database/instances/order-mgmt-db/roles', {
    name: 'carol@example.com',
    identity_type: 'USER',
  });
  assert.equal(own.status, 200, JSON.stringify(own.body));
  assert.equal(own.body.identity_type, 'USER');
  const again = await api(pier, carol, 'POST', '/api/2.0/database/instances/order-mgmt-db/roles', {
    name: 'carol@example.com',
  });
  assert.equal(again.status, 409);

  const roles = await w.database.listDatabaseInstanceRoles({ instance_name: 'order-mgmt-db' });
  const names: string[] = [];
  for await (const role of roles) names.push(role.name);
  assert.ok(names.includes('carol@example.com') && names.includes('admin@pier.local'));
  const admin = await w.database.getDatabaseInstanceRole({
    instance_name: 'order-mgmt-db',
    name: 'admin@pier.local',
  });
  assert.equal(admin.membership_role, 'DATABRICKS_SUPERUSER');

  const { body } = await api(pier, carol, 'POST', '/api/2.0/database/credentials', {
    instance_names: ['order-mgmt-db'],
  });
  const client = new pg.Client({
    host: '127.0.0.1',
    port: pier.proxyPort,
    user: 'carol@example.com',
    password: body.token as string,
    database: 'postgres',
    options: '-c instance=order-mgmt-db',
    ssl: { ca, servername: 'localhost' },
  });
  await client.connect();
  assert.equal((await client.query('SELECT current_user AS u')).rows[0].u, 'carol@example.com');
  await client.end();

  await w.database.deleteDatabaseInstanceRole({ instance_name: 'order-mgmt-db', name: 'carol@example.com' });
  const gone = await api(
    pier,
    pier.adminToken,
    'GET',
    '/api/2.0/database/instances/order-mgmt-db/roles/carol@example.com',
  );
  assert.equal(gone.status, 404);
});

test('a pool that refreshes its token keeps working across three expiries (5 s TTL)', async () => {
  const instance = await w.database.getDatabaseInstance({ name: 'order-mgmt-db' });
  let token = '';
  const refresh = async () => {
    token = (
      await w.database.generateDatabaseCredential({
        request_id: randomUUID(),
        instance_names: ['order-mgmt-db'],
      })
    ).token!;
  };
  await refresh();
  const timer = setInterval(() => void refresh(), 3000);
  const pool = new pg.Pool({
    host: instance.read_write_dns,
    port: pier.proxyPort,
    database: 'postgres',
    user: 'admin@pier.local',
    password: async () => token,
    ssl: { ca },
    max: 3,
    maxLifetimeSeconds: 4,
    idleTimeoutMillis: 1000,
  });
  try {
    const deadline = Date.now() + 16_000;
    let queries = 0;
    while (Date.now() < deadline) {
      const { rows } = await pool.query('SELECT count(*)::int AS n FROM feature_flags');
      assert.equal(rows[0].n, 1);
      queries++;
      await sleep(250);
    }
    assert.ok(queries > 40);
  } finally {
    clearInterval(timer);
    await pool.end();
  }
  // An old token is refused once it has expired.
  const stale = token;
  await sleep(5500);
  const client = proxyClient(instance.read_write_dns, 'admin@pier.local', stale);
  await assert.rejects(client.connect(), /expired at/);
});

test('a stopped instance refuses connections with the command that starts it', async () => {
  const { token } = await w.database.generateDatabaseCredential({
    request_id: randomUUID(),
    instance_names: ['order-mgmt-db'],
  });
  const instance = await w.database.getDatabaseInstance({ name: 'order-mgmt-db' });
  await api(pier, pier.adminToken, 'PATCH', '/api/2.0/database/instances/order-mgmt-db?update_mask=stopped', {
    stopped: true,
  });
  for (;;) {
    if ((await w.database.getDatabaseInstance({ name: 'order-mgmt-db' })).state === 'STOPPED') break;
    await sleep(50);
  }
  const client = proxyClient(instance.read_write_dns, 'admin@pier.local', token);
  const error = await client.connect().then(
    () => undefined,
    (e: { code?: string; message: string; hint?: string }) => e,
  );
  assert.equal(error?.code, '57P03');
  assert.match(
    `${error?.message} ${error?.hint}`,
    /STOPPED.*pier database start-database-instance order-mgmt-db/s,
  );
});

test('the JWKS publishes the keys that verify credentials', async () => {
  const response = await fetch(`${pier.apiUrl}/oidc/v1/keys`);
  const jwks = (await response.json()) as { keys: { kid: string; kty: string; d?: string }[] };
  assert.ok(jwks.keys.length >= 1);
  assert.equal(jwks.keys[0].kty, 'EC');
  assert.equal(jwks.keys[0].d, undefined, 'no private key material');
});

test('with enable_pg_native_login, roles with a Postgres password log in with it; without, they cannot', async () => {
  const created = await api(pier, pier.adminToken, 'POST', '/api/2.0/database/instances', {
    name: 'native-db',
    enable_pg_native_login: true,
  });
  assert.equal(created.status, 200);
  const native = await (
    await w.database.createDatabaseInstance({ database_instance: { name: 'plain-db' } })
  ).wait();
  for (;;) {
    if ((await w.database.getDatabaseInstance({ name: 'native-db' })).state === 'AVAILABLE') break;
    await sleep(50);
  }
  const instance = await w.database.getDatabaseInstance({ name: 'native-db' });
  assert.equal(instance.effective_enable_pg_native_login, true);

  // PG_ONLY roles through the API: refused where native login is off.
  const refused = await api(pier, pier.adminToken, 'POST', '/api/2.0/database/instances/plain-db/roles', {
    name: 'svc',
    identity_type: 'PG_ONLY',
  });
  assert.equal(refused.status, 400);
  assert.match(String(refused.body.message), /enable_pg_native_login/);
  const made = await api(pier, pier.adminToken, 'POST', '/api/2.0/database/instances/native-db/roles', {
    name: 'svc',
    identity_type: 'PG_ONLY',
  });
  assert.equal(made.status, 200, JSON.stringify(made.body));

  async function asAdmin(name: string, host: string, sql: string) {
    const { token } = await w.database.generateDatabaseCredential({
      request_id: randomUUID(),
      instance_names: [name],
    });
    const client = proxyClient(host, 'admin@pier.local', token);
    await client.connect();
    await client.query(sql);
    await client.end();
  }
  // The SQL route and the API route both give a role a password its creator may set.
  await asAdmin(
    'native-db',
    instance.read_write_dns!,
    `CREATE ROLE app_user LOGIN PASSWORD 'correct horse'; ALTER ROLE svc PASSWORD 'svc pw'`,
  );
  await asAdmin('plain-db', native.read_write_dns!, `CREATE ROLE app_user LOGIN PASSWORD 'correct horse'`);

  const connect = proxyClient;
  for (const [user, password] of [
    ['app_user', 'correct horse'],
    ['svc', 'svc pw'],
  ]) {
    const client = connect(instance.read_write_dns!, user, password);
    await client.connect();
    assert.equal((await client.query('SELECT current_user AS u')).rows[0].u, user);
    await client.end();
  }
  const wrong = connect(instance.read_write_dns!, 'app_user', 'wrong');
  await assert.rejects(wrong.connect(), (e: { code?: string }) => e.code === '28P01');
  const off = connect(native.read_write_dns!, 'app_user', 'correct horse');
  // Refused as a wrong password is: before login, nothing tells which instances exist or allow passwords.
  await assert.rejects(
    off.connect(),
    (e: { code?: string; message?: string }) =>
      e.code === '28P01' && e.message === 'password authentication failed for user "app_user"',
  );
});

test('the SQL route: CREATE EXTENSION databricks_auth and databricks_create_role', async () => {
  const instance = await w.database.getDatabaseInstance({ name: 'native-db' });
  const { token } = await w.database.generateDatabaseCredential({
    request_id: randomUUID(),
    instance_names: ['native-db'],
  });
  const admin = proxyClient(instance.read_write_dns, 'admin@pier.local', token);
  await admin.connect();
  await admin.query('CREATE EXTENSION IF NOT EXISTS databricks_auth');
  const created = await admin.query(`SELECT databricks_create_role('dave@example.com', 'USER') AS role`);
  assert.equal(created.rows[0].role, 'dave@example.com');
  await assert.rejects(
    admin.query(`SELECT databricks_create_role('dave@example.com', 'USER')`),
    /already exists/,
  );
  await assert.rejects(admin.query(`SELECT databricks_create_role('x', 'ROBOT')`), /identity_type must be/);
  await admin.end();

  // Dave's credential logs in as the role the SQL route made.
  await api(pier, pier.adminToken, 'POST', '/api/2.0/preview/scim/v2/Users', {
    userName: 'dave@example.com',
  });
  await api(pier, pier.adminToken, 'PATCH', '/api/2.0/permissions/database-instances/native-db', {
    access_control_list: [{ user_name: 'dave@example.com', permission_level: 'CAN_USE' }],
  });
  const dave = (
    await api(pier, pier.adminToken, 'POST', '/api/2.0/token-management/on-behalf-of/tokens', {
      application_id: 'dave@example.com',
    })
  ).body.token_value as string;
  const cred = await api(pier, dave, 'POST', '/api/2.0/database/credentials', {
    instance_names: ['native-db'],
  });
  const client = proxyClient(instance.read_write_dns, 'dave@example.com', cred.body.token as string);
  await client.connect();
  assert.equal((await client.query('SELECT current_user AS u')).rows[0].u, 'dave@example.com');
  await client.end();
});

test('rotating the signing key keeps credentials already issued working', async () => {
  const instance = await w.database.getDatabaseInstance({ name: 'native-db' });
  const before = await w.database.generateDatabaseCredential({
    request_id: randomUUID(),
    instance_names: ['native-db'],
  });
  const denied = await api(
    pier,
    (
      await api(pier, pier.adminToken, 'POST', '/api/2.0/token-management/on-behalf-of/tokens', {
        application_id: 'dave@example.com',
      })
    ).body.token_value as string,
    'POST',
    '/api/2.0/pier/signing-keys/rotate',
  );
  assert.equal(denied.status, 403);
  const rotated = await api(pier, pier.adminToken, 'POST', '/api/2.0/pier/signing-keys/rotate');
  assert.equal(rotated.status, 200);
  const kid = rotated.body.kid as string;
  assert.ok((rotated.body.keys as string[]).length >= 2, 'the old key still verifies');
  const after = await w.database.generateDatabaseCredential({
    request_id: randomUUID(),
    instance_names: ['native-db'],
  });
  const header = (token: string) =>
    JSON.parse(Buffer.from(token.split('.')[0], 'base64url').toString()) as { kid: string };
  assert.equal(header(after.token!).kid, kid);
  assert.notEqual(header(before.token!).kid, kid);
  for (const token of [before.token!, after.token!]) {
    const client = proxyClient(instance.read_write_dns, 'admin@pier.local', token);
    await client.connect();
    await client.query('SELECT 1');
    await client.end();
  }
});
