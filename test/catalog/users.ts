import assert from 'node:assert/strict';
import { api, type PierProcess } from '../helpers/pier.js';

/**
 * A non-admin user with a token, made the way an admin does it: SCIM, then
 * a token on their behalf.
 *
 * @example
 * const janeToken = await createUser(pier, 'jane@example.com');
 */
export async function createUser(pier: PierProcess, userName: string): Promise<string> {
  const user = await api(pier, pier.adminToken, 'POST', '/api/2.0/preview/scim/v2/Users', { userName });
  assert.equal(user.status, 201, JSON.stringify(user.body));
  const token = await api(pier, pier.adminToken, 'POST', '/api/2.0/token-management/on-behalf-of/tokens', {
    application_id: userName,
  });
  assert.equal(token.status, 200, JSON.stringify(token.body));
  return token.body.token_value as string;
}
