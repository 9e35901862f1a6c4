import { randomBytes, randomUUID } from 'node:crypto';
import type { ControlContext } from '../control/context.js';
import { invalidParameter, notFound } from '../errors.js';
import {
  deleteOAuthSecret,
  insertOAuthSecret,
  listOAuthSecrets,
  type OAuthSecretRow,
} from './oauth-secrets-store.js';
import { findServicePrincipalByApplicationId } from './service-principals.js';
import { findIdentityById, type IdentityRow } from './store.js';

/**
 * OAuth client secrets of service principals (the client credentials the
 * token endpoint takes, see identities/oauth-tokens.ts). A secret is 32
 * random bytes, shown once when created; the store keeps only its keyed
 * hash (MasterKey.mac), so neither a copy of the store nor a log of it
 * gives a secret back. Databricks' default lifetime: 730 days.
 */

/** Databricks OAuth secrets begin with `dose`; Pier's do too, so secret scanners know them. */
const SECRET_PREFIX = 'dose';
export const OAUTH_SECRET_MAC_CONTEXT = 'oauth_secrets';
const DEFAULT_LIFETIME_SECONDS = 730 * 24 * 3600;
const MAX_LIFETIME_SECONDS = DEFAULT_LIFETIME_SECONDS;

/** A new secret: the value in clear, this once. Times RFC3339. */
export interface CreatedOAuthSecret {
  id: string;
  secret: string;
  createTime: string;
  expireTime?: string;
}

/**
 * Creates a secret for service principal `servicePrincipalId` (its SCIM id
 * or application id), valid for `lifetimeSeconds` (default 730 days).
 *
 * @example
 * const { secret } = await createOAuthSecret(ctx, sp.id); // DATABRICKS_CLIENT_SECRET
 */
export async function createOAuthSecret(
  ctx: ControlContext,
  servicePrincipalId: string,
  lifetimeSeconds?: number,
): Promise<CreatedOAuthSecret> {
  const lifetime = lifetimeSeconds ?? DEFAULT_LIFETIME_SECONDS;
  if (!Number.isInteger(lifetime) || lifetime <= 0 || lifetime > MAX_LIFETIME_SECONDS) {
    throw invalidParameter(
      `lifetime must be a whole number of seconds between 1 and ${MAX_LIFETIME_SECONDS} (730 days), such as "3600s"; got ${lifetimeSeconds}.`,
    );
  }
  const owner = await servicePrincipalNamed(ctx, servicePrincipalId);
  const secret = `${SECRET_PREFIX}${randomBytes(32).toString('hex')}`;
  const row = await insertOAuthSecret(ctx.store, {
    id: randomUUID(),
    identityId: owner.id,
    hash: ctx.masterKey.mac(secret, OAUTH_SECRET_MAC_CONTEXT),
    expiresAt: new Date(Date.now() + lifetime * 1000),
  });
  return {
    id: row.id,
    secret,
    createTime: row.created_at.toISOString(),
    ...(row.expires_at ? { expireTime: row.expires_at.toISOString() } : {}),
  };
}

/** The secrets of a service principal (never their values). */
export async function listOAuthSecretsOf(
  ctx: ControlContext,
  servicePrincipalId: string,
): Promise<OAuthSecretRow[]> {
  const owner = await servicePrincipalNamed(ctx, servicePrincipalId);
  return listOAuthSecrets(ctx.store, owner.id);
}

/** Deletes one secret: tokens already issued with it stay valid until they expire (as on Databricks). */
export async function deleteOAuthSecretOf(
  ctx: ControlContext,
  servicePrincipalId: string,
  secretId: string,
): Promise<void> {
  const owner = await servicePrincipalNamed(ctx, servicePrincipalId);
  if (!(await deleteOAuthSecret(ctx.store, owner.id, secretId))) {
    throw notFound(`Secret ${secretId} of service principal ${servicePrincipalId} does not exist.`);
  }
}

/**
 * `lifetime` as the API sends it: a protobuf Duration string (`"3600s"`),
 * or a plain number of seconds.
 */
export function parseLifetime(value: unknown): number | undefined {
  if (value === undefined || value === null || value === '') return undefined;
  const text = String(value).trim();
  const match = /^(\d{1,12})(?:\.0+)?s?$/.exec(text);
  if (!match) {
    throw invalidParameter(
      `lifetime must be a number of seconds such as "3600s", got ${JSON.stringify(value)}.`,
    );
  }
  return Number(match[1]);
}

/** A service principal by SCIM id or application id. */
async function servicePrincipalNamed(ctx: ControlContext, idOrApplicationId: string): Promise<IdentityRow> {
  const byId = await findIdentityById(ctx.store, idOrApplicationId);
  const row =
    byId?.kind === 'SERVICE_PRINCIPAL'
      ? byId
      : await findServicePrincipalByApplicationId(ctx, idOrApplicationId);
  if (!row) throw notFound(`Service principal ${idOrApplicationId} does not exist.`);
  return row;
}
