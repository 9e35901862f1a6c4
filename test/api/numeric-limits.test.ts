import assert from 'node:assert/strict';
import { rm } from 'node:fs/promises';
import { after, before, test } from 'node:test';
import { api, type PierProcess, removePier, runPier, startPier, tempDataDir } from '../helpers/pier.js';

let pier: PierProcess;
const SCIM_USERS = '/api/2.0/preview/scim/v2/Users';
const HUGE = '99999999999999999999';

before(async () => {
  pier = await startPier();
});
after(async () => removePier(pier));

const tokenIds = async () =>
  (
    (await api(pier, pier.adminToken, 'GET', '/api/2.0/token/list')).body.token_infos as {
      token_id: string;
    }[]
  )
    .map((t) => t.token_id)
    .sort();

async function expect400(method: string, path: string, body: unknown, message: RegExp) {
  const response = await api(pier, pier.adminToken, method, path, body);
  assert.equal(response.status, 400, JSON.stringify(response.body));
  assert.equal(response.body.error_code, 'INVALID_PARAMETER_VALUE');
  assert.match(String(response.body.message), message);
}

test('a huge SCIM startIndex is INVALID_PARAMETER_VALUE, not an internal error', async () => {
  for (const value of [HUGE, '9223372036854775807', '2147483648']) {
    await expect400(
      'GET',
      `${SCIM_USERS}?startIndex=${value}`,
      undefined,
      /startIndex must be at most 2147483647/,
    );
  }
  await expect400('GET', `${SCIM_USERS}?startIndex=x`, undefined, /'startIndex' must be an integer/);
  // The largest accepted startIndex is simply past the end.
  const last = await api(pier, pier.adminToken, 'GET', `${SCIM_USERS}?startIndex=2147483647`);
  assert.equal(last.status, 200);
  assert.deepEqual(last.body.Resources, []);
  // As RFC 7644 has it: a count beyond the page limit gets the limit, a startIndex below 1 means 1.
  const capped = await api(pier, pier.adminToken, 'GET', `${SCIM_USERS}?count=${HUGE}&startIndex=-5`);
  assert.equal(capped.status, 200);
  assert.equal(capped.body.startIndex, 1);
  assert.equal(capped.body.itemsPerPage, 1);
});

test('a SCIM user id too long to be one is RESOURCE_DOES_NOT_EXIST', async () => {
  const response = await api(pier, pier.adminToken, 'GET', `${SCIM_USERS}/${HUGE}`);
  assert.equal(response.status, 404);
  assert.equal(response.body.error_code, 'RESOURCE_DOES_NOT_EXIST');
});

test('a token lifetime beyond 730 days is refused and creates no token', async () => {
  const before = await tokenIds();
  for (const lifetime of [1e20, Number.MAX_SAFE_INTEGER, 730 * 86400 + 1]) {
    await expect400(
      'POST',
      '/api/2.0/token/create',
      { lifetime_seconds: lifetime },
      /lifetime_seconds must be at most 63072000 \(730 days\)/,
    );
  }
  await expect400(
    'POST',
    '/api/2.0/token-management/on-behalf-of/tokens',
    { application_id: 'admin@pier.local', lifetime_seconds: 1e20 },
    /lifetime_seconds must be at most 63072000/,
  );
  assert.deepEqual(await tokenIds(), before, 'nothing created');
  const longest = await api(pier, pier.adminToken, 'POST', '/api/2.0/token/create', {
    lifetime_seconds: 730 * 86400,
  });
  assert.equal(longest.status, 200);
});

test('an instance uid that is no uuid is RESOURCE_DOES_NOT_EXIST', async () => {
  const response = await api(
    pier,
    pier.adminToken,
    'GET',
    `/api/2.0/database/instances:findByUid?uid=${'-'.repeat(36)}`,
  );
  assert.equal(response.status, 404);
  assert.equal(response.body.error_code, 'RESOURCE_DOES_NOT_EXIST');
});

test('--credential-ttl beyond a day is refused before Pier starts', async () => {
  const dataDir = await tempDataDir();
  const result = await runPier(['up', '--data-dir', dataDir, '--credential-ttl', '86401']);
  assert.equal(result.code, 1);
  assert.match(result.stderr, /--credential-ttl 86401 is too long: at most 86400 seconds/);
  await rm(dataDir, { recursive: true, force: true });
});
