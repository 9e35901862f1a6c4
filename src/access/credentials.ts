import { issueDatabaseCredential } from '../auth/credentials.js';
import { reservedNameReason } from '../auth/reserved-names.js';
import type { ControlContext } from '../control/context.js';
import { asObject, optionalString } from '../control/validate.js';
import { invalidParameter, PierError } from '../errors.js';
import type { IdentityRow } from '../identities/store.js';
import { instanceForCaller } from '../instances/permissions.js';
import {
  type CredentialRequestRow,
  credentialSealContext,
  findCredentialRequest,
  purgeExpiredCredentialRequests,
  saveCredentialRequest,
} from './credentials-store.js';

/** A database credential as issued, or as issued before for the same `request_id`. */
export interface IssuedCredential {
  /** The signed token, in clear: the caller's Postgres password. */
  token: string;
  expiresAt: Date;
}

/** No credential for a user name Postgres or Pier reserves (it could never be a login role). */
export function refuseReservedCaller(caller: IdentityRow): void {
  const reserved = reservedNameReason(caller.user_name);
  if (reserved) {
    throw new PierError(
      'PERMISSION_DENIED',
      `No database credential can be issued to ${caller.user_name}: ${reserved}. Ask an admin for a user with another name.`,
    );
  }
}

/**
 * `POST /api/2.0/database/credentials`: a signed, short-lived token that logs
 * the caller into the named instances as their own Postgres role. Needs
 * CAN_USE on every instance. The same `request_id` from the same caller
 * returns the same token while it is valid; request ids are per caller, so
 * another user's id (equal by chance or on purpose) never reaches this
 * token. The store keeps the token sealed by the master key, never in clear.
 */
export async function generateDatabaseCredential(
  ctx: ControlContext,
  caller: IdentityRow,
  input: unknown,
): Promise<IssuedCredential> {
  refuseReservedCaller(caller);
  const body = asObject(input, 'The request body');
  const requestId = optionalString(body, 'request_id');
  const names = body.instance_names ?? [];
  if (!Array.isArray(names) || names.some((n) => typeof n !== 'string')) {
    throw invalidParameter('instance_names must be an array of instance names.');
  }
  if (Array.isArray(body.claims) && body.claims.length > 0) {
    throw invalidParameter(
      'claims on Unity Catalog tables are not supported yet; name the instances in instance_names.',
    );
  }
  if (names.length === 0) {
    throw invalidParameter(
      'instance_names is required: the instances the credential is for, e.g. ["order-mgmt-db"].',
    );
  }
  const instances = [];
  for (const name of new Set(names as string[]))
    instances.push(await instanceForCaller(ctx.store, caller, name, 'CAN_USE'));
  const uids = instances.map((instance) => instance.uid).sort();

  return ctx.store.transaction(async (tx) => {
    const retry = (row: CredentialRequestRow): IssuedCredential => {
      if ([...row.instance_uids].sort().join() !== uids.join()) {
        throw invalidParameter(
          `request_id '${requestId}' was already used for other instances. Use a fresh UUID for every request.`,
        );
      }
      const token = ctx.masterKey.open(row.sealed_token, credentialSealContext(row));
      return { token, expiresAt: row.expires_at };
    };
    if (requestId) {
      const previous = await findCredentialRequest(tx, caller.id, requestId);
      if (previous) return retry(previous);
    }
    const signed = await issueDatabaseCredential(ctx.keys.current(), {
      subject: caller.user_name,
      identityId: caller.id,
      instanceUids: uids,
      ttlSeconds: ctx.config.credentialTtlSeconds,
    });
    const credential = { token: signed.token, expiresAt: new Date(signed.expiration_time) };
    if (requestId) {
      await purgeExpiredCredentialRequests(tx);
      const key = { identity_id: caller.id, request_id: requestId };
      const saved = await saveCredentialRequest(tx, {
        ...key,
        instance_uids: uids,
        sealed_token: ctx.masterKey.seal(credential.token, credentialSealContext(key)),
        expires_at: credential.expiresAt,
      });
      // The same caller's concurrent request with this id got there first: answer as it did.
      const winner = saved ? undefined : await findCredentialRequest(tx, caller.id, requestId);
      if (winner) return retry(winner);
    }
    return credential;
  });
}
