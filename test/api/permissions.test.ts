import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { WorkspaceClient } from '@databricks/sdk-experimental';
import { api, eventually, type PierProcess, removePier, startPier } from '../helpers/pier.js';

let pier: PierProcess;
let aliceToken: string;
let bobToken: string;
const INSTANCES = '/api/2.0/database/instances';

async function userWithToken(userName: string): Promise<string> {
  const user = await api(pier, pier.adminToken, 'POST', '/api/2.0/preview/scim/v2/Users', { userName });
  assert.equal(user.status, 201, JSON.stringify(user.body));
  const token = await api(pier, pier.adminToken, 'POST', '/api/2.0/token-management/on-behalf-of/tokens', {
    application_id: userName,
    comment: 'test',
  });
  assert.equal(token.status, 200);
  return token.body.token_value as string;
}

before(async () => {
  pier = await startPier();
  aliceToken = await userWithToken('alice@example.com');
  bobToken = await userWithToken('bob@example.com');
});
after(async () => removePier(pier));

test('SCIM Me tells each caller who they are', async () => {
  const alice = new WorkspaceClient({ host: pier.apiUrl, token: aliceToken, authType: 'pat' });
  const me = await alice.currentUser.me();
  assert.equal(me.userName, 'alice@example.com');
  const admin = new WorkspaceClient({ host: pier.apiUrl, token: pier.adminToken, authType: 'pat' });
  assert.equal((await admin.currentUser.me()).userName, 'admin@pier.local');
});

test('only admins create users', async () => {
  const response = await api(pier, aliceToken, 'POST', '/api/2.0/preview/scim/v2/Users', {
    userName: 'eve@example.com',
  });
  assert.equal(response.status, 403);
  assert.equal(response.body.error_code, 'PERMISSION_DENIED');
});

test('an instance is invisible to users without permission, usable with CAN_USE, changeable with CAN_MANAGE', async () => {
  const created = await api(pier, aliceToken, 'POST', INSTANCES, { name: 'alice-db', capacity: 'CU_1' });
  assert.equal(created.status, 200);
  assert.equal(created.body.creator, 'alice@example.com');

  // The creator holds CAN_MANAGE.
  const acl = await api(pier, aliceToken, 'GET', '/api/2.0/permissions/database-instances/alice-db');
  assert.equal(acl.status, 200);
  const entries = acl.body.access_control_list as {
    user_name?: string;
    all_permissions: { permission_level: string }[];
  }[];
  assert.deepEqual(
    entries.filter((e) => e.user_name).map((e) => [e.user_name, e.all_permissions[0].permission_level]),
    [['alice@example.com', 'CAN_MANAGE']],
  );

  // Bob sees nothing and can change nothing.
  assert.equal((await api(pier, bobToken, 'GET', `${INSTANCES}/alice-db`)).status, 404);
  const bobList = await api(pier, bobToken, 'GET', INSTANCES);
  assert.deepEqual(bobList.body.database_instances ?? [], []);
  const bobDelete = await api(pier, bobToken, 'DELETE', `${INSTANCES}/alice-db`);
  assert.equal(bobDelete.status, 404);
  assert.equal(bobDelete.body.error_code, 'RESOURCE_DOES_NOT_EXIST');

  // Alice grants CAN_USE: Bob sees it but cannot resize, stop or delete it.
  const granted = await api(pier, aliceToken, 'PATCH', '/api/2.0/permissions/database-instances/alice-db', {
    access_control_list: [{ user_name: 'bob@example.com', permission_level: 'CAN_USE' }],
  });
  assert.equal(granted.status, 200, JSON.stringify(granted.body));
  assert.equal((await api(pier, bobToken, 'GET', `${INSTANCES}/alice-db`)).status, 200);
  assert.deepEqual(
    ((await api(pier, bobToken, 'GET', INSTANCES)).body.database_instances as { name: string }[]).map(
      (i) => i.name,
    ),
    ['alice-db'],
  );
  for (const [method, path, body] of [
    ['PATCH', `${INSTANCES}/alice-db?update_mask=capacity`, { capacity: 'CU_2' }],
    ['PATCH', `${INSTANCES}/alice-db?update_mask=stopped`, { stopped: true }],
    ['DELETE', `${INSTANCES}/alice-db`, undefined],
    ['PUT', '/api/2.0/permissions/database-instances/alice-db', { access_control_list: [] }],
  ] as const) {
    const denied = await api(pier, bobToken, method, path, body);
    assert.equal(denied.status, 403, `${method} ${path}`);
    assert.equal(denied.body.error_code, 'PERMISSION_DENIED');
    assert.match(String(denied.body.message), /needs CAN_MANAGE/);
  }
  const unchanged = await api(pier, aliceToken, 'GET', `${INSTANCES}/alice-db`);
  assert.equal(unchanged.body.capacity, 'CU_1');

  // With CAN_MANAGE, Bob can resize.
  const promoted = await api(pier, aliceToken, 'PATCH', '/api/2.0/permissions/database-instances/alice-db', {
    access_control_list: [{ user_name: 'bob@example.com', permission_level: 'CAN_MANAGE' }],
  });
  assert.equal(promoted.status, 200);
  const resized = await api(pier, bobToken, 'PATCH', `${INSTANCES}/alice-db?update_mask=capacity`, {
    capacity: 'CU_2',
  });
  assert.equal(resized.status, 200);
  await eventually(async () => {
    const { body } = await api(pier, aliceToken, 'GET', `${INSTANCES}/alice-db`);
    return body.state === 'AVAILABLE' && body.capacity === 'CU_2' ? true : undefined;
  });

  // PUT replaces: Bob loses access again. Admins always manage.
  const replaced = await api(pier, aliceToken, 'PUT', '/api/2.0/permissions/database-instances/alice-db', {
    access_control_list: [{ user_name: 'alice@example.com', permission_level: 'CAN_MANAGE' }],
  });
  assert.equal(replaced.status, 200);
  assert.equal((await api(pier, bobToken, 'GET', `${INSTANCES}/alice-db`)).status, 404);
  assert.equal((await api(pier, pier.adminToken, 'GET', `${INSTANCES}/alice-db`)).status, 200);
});

test('granting an unknown level or user is refused', async () => {
  await api(pier, aliceToken, 'POST', INSTANCES, { name: 'alice-two', stopped: true });
  const badLevel = await api(pier, aliceToken, 'PATCH', '/api/2.0/permissions/database-instances/alice-two', {
    access_control_list: [{ user_name: 'bob@example.com', permission_level: 'CAN_RESTART' }],
  });
  assert.equal(badLevel.status, 400);
  assert.match(String(badLevel.body.message), /CAN_USE, CAN_MANAGE/);
  const badUser = await api(pier, aliceToken, 'PATCH', '/api/2.0/permissions/database-instances/alice-two', {
    access_control_list: [{ user_name: 'nobody@example.com', permission_level: 'CAN_USE' }],
  });
  assert.equal(badUser.status, 400);
  assert.match(String(badUser.body.message), /does not exist/);
});

test('personal access tokens can be listed and revoked', async () => {
  const created = await api(pier, bobToken, 'POST', '/api/2.0/token/create', {
    comment: 'ci',
    lifetime_seconds: 600,
  });
  assert.equal(created.status, 200);
  const value = created.body.token_value as string;
  assert.match(value, /^dapi[0-9a-f]{32}$/);
  const info = created.body.token_info as { token_id: string; expiry_time: number };
  assert.ok(info.expiry_time > Date.now());
  const list = await api(pier, bobToken, 'GET', '/api/2.0/token/list');
  assert.ok((list.body.token_infos as { token_id: string }[]).some((t) => t.token_id === info.token_id));
  assert.equal((await api(pier, value, 'GET', '/api/2.0/preview/scim/v2/Me')).status, 200);
  assert.equal(
    (await api(pier, bobToken, 'POST', '/api/2.0/token/delete', { token_id: info.token_id })).status,
    200,
  );
  const revoked = await api(pier, value, 'GET', '/api/2.0/preview/scim/v2/Me');
  assert.equal(revoked.status, 401);
  assert.equal(revoked.body.error_code, 'UNAUTHENTICATED');
});
