import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { api, eventually, type PierProcess } from './pier.js';

/** A workspace user made by the admin, with a personal access token of its own. */
export async function userWithToken(
  pier: PierProcess,
  userName: string,
): Promise<{ id: string; token: string }> {
  const user = await api(pier, pier.adminToken, 'POST', '/api/2.0/preview/scim/v2/Users', { userName });
  assert.equal(user.status, 201, JSON.stringify(user.body));
  const token = await api(pier, pier.adminToken, 'POST', '/api/2.0/token-management/on-behalf-of/tokens', {
    application_id: userName,
    comment: 'test',
  });
  assert.equal(token.status, 200, JSON.stringify(token.body));
  return { id: user.body.id as string, token: token.body.token_value as string };
}

/** Creates an instance as `token`'s user and waits until it is AVAILABLE; returns its uid. */
export async function availableInstance(
  pier: PierProcess,
  token: string,
  name: string,
  fields: Record<string, unknown> = {},
): Promise<string> {
  const created = await api(pier, token, 'POST', '/api/2.0/database/instances', {
    name,
    capacity: 'CU_1',
    ...fields,
  });
  assert.equal(created.status, 200, JSON.stringify(created.body));
  await eventually(
    async () => {
      const { body } = await api(pier, token, 'GET', `/api/2.0/database/instances/${name}`);
      return body.state === 'AVAILABLE' ? true : undefined;
    },
    90_000,
    `${name} AVAILABLE`,
  );
  return created.body.uid as string;
}

/** Gives `userName` a permission level on an instance (as `token`, a CAN_MANAGE holder). */
export async function grantInstance(
  pier: PierProcess,
  token: string,
  instance: string,
  userName: string,
  level: 'CAN_USE' | 'CAN_MANAGE',
): Promise<void> {
  const granted = await api(pier, token, 'PATCH', `/api/2.0/permissions/database-instances/${instance}`, {
    access_control_list: [{ user_name: userName, permission_level: level }],
  });
  assert.equal(granted.status, 200, JSON.stringify(granted.body));
}

/**
 * The instance's bootstrap superuser over its private socket: what the test
 * uses to set up and inspect state no API shows (owners, rows).
 */
export async function instanceSuperuser(
  pier: PierProcess,
  uid: string,
  database = 'postgres',
): Promise<pg.Client> {
  const client = new pg.Client({
    host: join(pier.dataDir, 'run', uid),
    port: 5432,
    user: 'postgres',
    database,
  });
  await client.connect();
  return client;
}

/**
 * Connects through Pier's proxy to `instance` as `user` with `password`;
 * returns the connected client, or the error the client was shown.
 */
export async function connectThroughProxy(
  pier: PierProcess,
  instance: string,
  user: string,
  password: string,
): Promise<{ client?: pg.Client; error?: Error & { code?: string } }> {
  const client = new pg.Client({
    host: '127.0.0.1',
    port: pier.proxyPort,
    user,
    password,
    database: 'postgres',
    options: `-c instance=${instance}`,
    ssl: { ca: readFileSync(pier.caCertPath as string, 'utf8'), servername: 'localhost' },
  });
  client.on('error', () => {});
  try {
    await client.connect();
    return { client };
  } catch (error) {
    return { error: error as Error & { code?: string } };
  }
}

/** A database credential for `instance`, as `token`'s user. */
export async function databaseCredential(
  pier: PierProcess,
  token: string,
  instance: string,
): Promise<string> {
  const { status, body } = await api(pier, token, 'POST', '/api/2.0/database/credentials', {
    instance_names: [instance],
  });
  assert.equal(status, 200, JSON.stringify(body));
  return body.token as string;
}
