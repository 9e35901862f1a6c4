import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { api, type PierProcess, removePier, startPier } from '../helpers/pier.js';

let pier: PierProcess;
const INSTANCES = '/api/2.0/database/instances';

before(async () => {
  pier = await startPier({ args: ['--max-instances', '3'] });
  const created = await api(pier, pier.adminToken, 'POST', INSTANCES, {
    name: 'existing',
    capacity: 'CU_1',
    stopped: true,
  });
  assert.equal(created.status, 200);
});
after(async () => removePier(pier));

/** Every instance as the admin sees it, to prove a failed call changed nothing. */
async function snapshot(): Promise<unknown[]> {
  const { body } = await api(pier, pier.adminToken, 'GET', INSTANCES);
  return ((body.database_instances ?? []) as Record<string, unknown>[]).map(
    ({ state, effective_stopped, ...rest }) => rest,
  );
}

async function expectError(
  method: string,
  path: string,
  body: unknown,
  status: number,
  errorCode: string,
  message: RegExp,
  token: string | null = pier.adminToken,
) {
  const before = await snapshot();
  const response = await api(pier, token ?? undefined, method, path, body);
  assert.equal(response.status, status, JSON.stringify(response.body));
  assert.equal(response.body.error_code, errorCode);
  assert.match(String(response.body.message), message);
  assert.deepEqual(await snapshot(), before, 'a failed call changes nothing');
}

describe('create rejects bad input with INVALID_PARAMETER_VALUE and creates nothing', () => {
  const cases: [string, Record<string, unknown>, RegExp][] = [
    ['a missing name', { capacity: 'CU_1' }, /'name' is required/],
    ['an upper-case name', { name: 'Orders' }, /lowercase letters, digits and hyphens/],
    ['a name starting with a digit', { name: '1orders' }, /starting with a letter/],
    ['a 64-character name', { name: `a${'b'.repeat(63)}` }, /1-63/],
    ['a name with an underscore', { name: 'order_db' }, /lowercase letters, digits and hyphens/],
    ['an unknown capacity', { name: 'ok-name', capacity: 'CU_3' }, /CU_1, CU_2, CU_4, CU_8/],
    ['a retention window below 2 days', { name: 'ok-name', retention_window_in_days: 1 }, /between 2 and 35/],
    [
      'a retention window above 35 days',
      { name: 'ok-name', retention_window_in_days: 36 },
      /between 2 and 35/,
    ],
    ['two nodes', { name: 'ok-name', node_count: 2 }, /node_count 2 is not supported yet/],
    ['readable secondaries', { name: 'ok-name', enable_readable_secondaries: true }, /not supported yet/],
    ['stopped as a string', { name: 'ok-name', stopped: 'yes' }, /'stopped' must be true or false/],
    [
      'custom tags that are not a list',
      { name: 'ok-name', custom_tags: { a: 1 } },
      /custom_tags must be an array/,
    ],
  ];
  for (const [what, body, message] of cases) {
    test(what, () => expectError('POST', INSTANCES, body, 400, 'INVALID_PARAMETER_VALUE', message));
  }
});

test('malformed JSON is MALFORMED_REQUEST', () =>
  expectError('POST', INSTANCES, '{"name": "x",', 400, 'MALFORMED_REQUEST', /not valid JSON/));

test('a body that is not an object is rejected', () =>
  expectError('POST', INSTANCES, '[1,2]', 400, 'INVALID_PARAMETER_VALUE', /must be a JSON object/));

test('an oversize body is 413', () =>
  expectError(
    'POST',
    INSTANCES,
    { name: 'big', custom_tags: [{ key: 'x', value: 'y'.repeat(2 * 1024 * 1024) }] },
    413,
    'REQUEST_LIMIT_EXCEEDED',
    /larger than/,
  ));

test('a duplicate name is RESOURCE_ALREADY_EXISTS and leaves the existing instance as it was', () =>
  expectError(
    'POST',
    INSTANCES,
    { name: 'existing', capacity: 'CU_8' },
    409,
    'RESOURCE_ALREADY_EXISTS',
    /already exists/,
  ));

test('an unknown instance is RESOURCE_DOES_NOT_EXIST', async () => {
  await expectError(
    'GET',
    `${INSTANCES}/nope`,
    undefined,
    404,
    'RESOURCE_DOES_NOT_EXIST',
    /'nope' does not exist/,
  );
  await expectError(
    'PATCH',
    `${INSTANCES}/nope?update_mask=capacity`,
    { capacity: 'CU_2' },
    404,
    'RESOURCE_DOES_NOT_EXIST',
    /does not exist/,
  );
  await expectError(
    'DELETE',
    `${INSTANCES}/nope`,
    undefined,
    404,
    'RESOURCE_DOES_NOT_EXIST',
    /does not exist/,
  );
  await expectError(
    'GET',
    `${INSTANCES}:findByUid?uid=00000000-0000-0000-0000-000000000000`,
    undefined,
    404,
    'RESOURCE_DOES_NOT_EXIST',
    /No database instance has uid/,
  );
});

test('no token, or an unknown one, is UNAUTHENTICATED', async () => {
  await expectError('GET', INSTANCES, undefined, 401, 'UNAUTHENTICATED', /No credentials/, null);
  await expectError(
    'POST',
    INSTANCES,
    { name: 'sneaky' },
    401,
    'UNAUTHENTICATED',
    /Invalid access token/,
    'dapi0000',
  );
});

test('bad updates are rejected and change nothing', async () => {
  const path = `${INSTANCES}/existing`;
  await expectError(
    'PATCH',
    path,
    { capacity: 'CU_2' },
    400,
    'INVALID_PARAMETER_VALUE',
    /update_mask is required/,
  );
  await expectError(
    'PATCH',
    `${path}?update_mask=name`,
    { name: 'existing' },
    400,
    'INVALID_PARAMETER_VALUE',
    /cannot be updated/,
  );
  await expectError(
    'PATCH',
    `${path}?update_mask=capacity`,
    { capacity: 'CU_16' },
    400,
    'INVALID_PARAMETER_VALUE',
    /CU_1, CU_2/,
  );
  await expectError(
    'PATCH',
    `${path}?update_mask=capacity`,
    {},
    400,
    'INVALID_PARAMETER_VALUE',
    /does not set it/,
  );
  await expectError(
    'PATCH',
    `${path}?update_mask=capacity,retention_window_in_days`,
    { capacity: 'CU_2', retention_window_in_days: 99 },
    400,
    'INVALID_PARAMETER_VALUE',
    /between 2 and 35/,
  );
});

test('delete with a purge that is not true or false is refused and the instance stays', () =>
  expectError(
    'DELETE',
    `${INSTANCES}/existing?purge=yes`,
    undefined,
    400,
    'INVALID_PARAMETER_VALUE',
    /purge must be true or false/,
  ));

test('past the instance limit, create is RESOURCE_EXHAUSTED', async () => {
  for (const name of ['second', 'third']) {
    const { status } = await api(pier, pier.adminToken, 'POST', INSTANCES, { name, stopped: true });
    assert.equal(status, 200);
  }
  await expectError('POST', INSTANCES, { name: 'fourth', stopped: true }, 429, 'RESOURCE_EXHAUSTED', /limit/);
});

test('an unknown endpoint answers in the Databricks envelope', async () => {
  const response = await api(pier, pier.adminToken, 'GET', '/api/2.0/nothing-here');
  assert.equal(response.status, 404);
  assert.equal(response.body.error_code, 'ENDPOINT_NOT_FOUND');
});
