import { issueDatabaseCredential } from '../auth/credentials.js';
import { reservedNameReason } from '../auth/reserved-names.js';
import { invalidParameter, PierError } from '../errors.js';
import {
  findCredentialRequest,
  purgeExpiredCredentialRequests,
  saveCredentialRequest,
} from '../store/credentials.js';
import type { IdentityRow } from '../store/identities.js';
import type { ControlContext } from './context.js';
import { instanceForCaller } from './instance-permissions.js';
import type { SigningKeys } from './signing-keys.js';
import { asObject, optionalString } from './validate.js';

/**
 * `POST /api/2.0/database/credentials`: a signed, short-lived token that logs
 * the caller into the named instances as their own Postgres role. Needs
 * CAN_USE on every instance. The same `request_id` from the same caller
 * returns the same token while it is valid.
 */
export async function generateDatabaseCredential(
  ctx: ControlContext,
  keys: SigningKeys,
  caller: IdentityRow,
  input: unknown,
): Promise<{ token: string; expiration_time: string }> {
  const reserved = reservedNameReason(caller.user_name);
  if (reserved) {
    throw new PierError(
      'PERMISSION_DENIED',
      `No database credential can be issued to ${caller.user_name}: ${reserved}. Ask an admin for a user with another name.`,
    );
  }
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
    if (requestId) {
      const previous = await findCredentialRequest(tx, requestId);
      if (previous && previous.expires_at.getTime() > Date.now()) {
        if (previous.identity_id !== caller.id) {
          throw new PierError(
            'INVALID_PARAMETER_VALUE',
            `request_id '${requestId}' was already used by another user. Use a fresh UUID for every request.`,
          );
        }
        if ([...previous.instance_uids].sort().join() !== uids.join()) {
          throw invalidParameter(
            `request_id '${requestId}' was already used for other instances. Use a fresh UUID for every request.`,
          );
        }
        return { token: previous.token, expiration_time: previous.expires_at.toISOString() };
      }
    }
    const credential = await issueDatabaseCredential(keys.current(), {
      subject: caller.user_name,
      identityId: caller.id,
      instanceUids: uids,
      ttlSeconds: ctx.config.credentialTtlSeconds,
    });
    if (requestId) {
      await purgeExpiredCredentialRequests(tx);
      await saveCredentialRequest(tx, {
        request_id: requestId,
        identity_id: caller.id,
        instance_uids: uids,
        token: credential.token,
        expires_at: new Date(credential.expiration_time),
      });
    }
    return credential;
  });
}
