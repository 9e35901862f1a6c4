import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, test } from 'node:test';
import { decodeJwt } from 'jose';
import { api, type PierProcess, removePier, startPier } from '../helpers/pier.js';

let pier: PierProcess;
const tokens: Record<string, string> = {};
const CREDENTIALS = '/api/2.0/database/credentials';

async function userWithToken(userName: string): Promise<string> {
  const user = await api(pier, pier.adminToken, 'POST', '/api/2.0/preview/scim/v2/Users', { userName });
  assert.equal(user.status, 201, JSON.stringify(user.body));
  const token = await api(pier, pier.adminToken, 'POST', '/api/2.0/token-management/on-behalf-of/tokens', {
    application_id: userName,
  });
  assert.equal(token.status, 200);
  return token.body.token_value as string;
}

before(async () => {
  pier = await startPier();
  for (const name of ['shared-db', 'other-db']) {
    const created = await api(pier, pier.adminToken, 'POST', '/api/2.0/database/instances', {
      name,
      stopped: true,
    });
    assert.equal(created.status, 200, JSON.stringify(created.body));
  }
  for (const user of ['alice@example.com', 'bob@example.com']) {
    tokens[user] = await userWithToken(user);
    for (const instance of ['shared-db', 'other-db']) {
      const granted = await api(
        pier,
        pier.adminToken,
        'PATCH',
        `/api/2.0/permissions/database-instances/${instance}`,
        { access_control_list: [{ user_name: user, permission_level: 'CAN_USE' }] },
      );
      assert.equal(granted.status, 200, JSON.stringify(granted.body));
    }
  }
});
after(async () => removePier(pier));

const credential = (user: string, requestId: string, instances = ['shared-db']) =>
  api(pier, tokens[user], 'POST', CREDENTIALS, { request_id: requestId, instance_names: instances });

test('two users sending the same request_id at once each get a token of their own', async () => {
  // An attacker who learns (or guesses) a victim's request_id replays it at the same moment.
  for (let round = 0; round < 5; round++) {
    const requestId = randomUUID();
    const answers = await Promise.all(
      ['alice@example.com', 'bob@example.com', 'alice@example.com', 'bob@example.com'].map(
        async (user) => [user, await credential(user, requestId)] as const,
      ),
    );
    for (const [user, answer] of answers) {
      assert.equal(answer.status, 200, JSON.stringify(answer.body));
      assert.equal(decodeJwt(answer.body.token as string).sub, user, 'a token for the caller, never another');
    }
    // Each caller's concurrent retries agree: one credential per (caller, request_id).
    assert.equal(answers[0][1].body.token, answers[2][1].body.token);
    assert.equal(answers[1][1].body.token, answers[3][1].body.token);
    assert.notEqual(answers[0][1].body.token, answers[1][1].body.token);
  }
});

test('a user repeating a request_id gets the same credential while it is valid', async () => {
  const requestId = randomUUID();
  const first = await credential('alice@example.com', requestId);
  const again = await credential('alice@example.com', requestId);
  assert.equal(again.status, 200);
  assert.deepEqual(again.body, first.body);
  // Bob using Alice's id afterwards gets his own, and Alice's stays hers.
  const bob = await credential('bob@example.com', requestId);
  assert.equal(bob.status, 200);
  assert.equal(decodeJwt(bob.body.token as string).sub, 'bob@example.com');
  assert.deepEqual((await credential('alice@example.com', requestId)).body, first.body);
});

test('a request_id reused for other instances is refused and the first credential stays', async () => {
  const requestId = randomUUID();
  const first = await credential('alice@example.com', requestId);
  const other = await credential('alice@example.com', requestId, ['other-db']);
  assert.equal(other.status, 400);
  assert.equal(other.body.error_code, 'INVALID_PARAMETER_VALUE');
  assert.match(String(other.body.message), /already used for other instances/);
  assert.deepEqual((await credential('alice@example.com', requestId)).body, first.body);
});
