import type { CreatedOAuthSecret } from './oauth-secrets.js';
import type { OAuthSecretRow } from './oauth-secrets-store.js';
import type { createToken } from './service.js';
import type { IdentityRow, TokenRow } from './store.js';

/**
 * The single mapping from identity rows to the JSON clients expect: SCIM
 * users, and the token API's `token_info`.
 */
/** SCIM User resource. */
export function userView(row: IdentityRow) {
  return {
    schemas: ['urn:ietf:params:scim:schemas:core:2.0:User'],
    id: row.id,
    userName: row.user_name,
    displayName: row.display_name ?? row.user_name,
    active: row.active,
    emails: [{ value: row.user_name, type: 'work', primary: true }],
    groups: row.is_admin ? [{ display: 'admins', value: 'admins' }] : [],
    entitlements: row.is_admin
      ? [{ value: 'workspace-access' }, { value: 'allow-cluster-create' }]
      : [{ value: 'workspace-access' }],
  };
}

/** SCIM ServicePrincipal resource. */
export function servicePrincipalView(row: IdentityRow) {
  return {
    schemas: ['urn:ietf:params:scim:schemas:core:2.0:ServicePrincipal'],
    id: row.id,
    applicationId: row.user_name,
    displayName: row.display_name ?? row.user_name,
    active: row.active,
    groups: row.is_admin ? [{ display: 'admins', value: 'admins' }] : [],
    entitlements: [{ value: 'workspace-access' }],
  };
}

/** `POST /api/2.0/token/create`'s answer: the plain token, shown this once. */
export function createdTokenView(created: Awaited<ReturnType<typeof createToken>>) {
  return {
    token_value: created.token,
    token_info: {
      token_id: created.tokenId,
      creation_time: created.createdAt.getTime(),
      expiry_time: created.expiresAt ? created.expiresAt.getTime() : -1,
      comment: created.comment ?? '',
      owner_id: Number(created.owner.id),
      created_by_username: created.owner.user_name,
    },
  };
}

/** `GET /api/2.0/token/list`. */
export function tokenInfosView(rows: TokenRow[]) {
  return {
    token_infos: rows.map((row) => ({
      token_id: row.token_id,
      creation_time: row.created_at.getTime(),
      expiry_time: row.expires_at ? row.expires_at.getTime() : -1,
      comment: row.comment ?? '',
    })),
  };
}

/** A new OAuth secret (`POST …/credentials/secrets`): the value, shown this once. */
export function createdOAuthSecretView(created: CreatedOAuthSecret) {
  return {
    id: created.id,
    secret: created.secret,
    status: 'ACTIVE',
    create_time: created.createTime,
    update_time: created.createTime,
    ...(created.expireTime ? { expire_time: created.expireTime } : {}),
  };
}

/** `GET …/credentials/secrets`: the secrets, never their values. */
export function oauthSecretsView(rows: OAuthSecretRow[], now = Date.now()) {
  return {
    secrets: rows.map((row) => ({
      id: row.id,
      status: row.expires_at && row.expires_at.getTime() <= now ? 'EXPIRED' : 'ACTIVE',
      create_time: row.created_at.toISOString(),
      update_time: row.created_at.toISOString(),
      ...(row.expires_at ? { expire_time: row.expires_at.toISOString() } : {}),
    })),
  };
}
