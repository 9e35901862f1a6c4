import { parseTableFullName } from '../catalog/names.js';
import type { ControlContext } from '../control/context.js';
import { notFound, PierError } from '../errors.js';
import type { IdentityRow } from '../identities/store.js';
import { permissionOn } from '../instances/permissions.js';
import { findInstanceByUid, type InstanceRow } from '../instances/store.js';
import type { Queryable } from '../store/store.js';

/**
 * Who may see and change a synced or registered database table: both live
 * on an instance, and the instance's permissions decide.
 */

/**
 * The table named `rawName`, if the caller holds a permission on its
 * instance; otherwise it does not exist for them (as the instance does not).
 */
export async function loadOnInstance<T extends { instance_uid: string }>(
  ctx: Pick<ControlContext, 'store'>,
  caller: IdentityRow,
  rawName: string,
  find: (db: Queryable, name: string) => Promise<T | undefined>,
  noun: string,
): Promise<{ table: T; instance: InstanceRow }> {
  const names = parseTableFullName(rawName);
  const name = `${names.catalog}.${names.schema}.${names.table}`;
  const table = await find(ctx.store, name);
  const instance = table ? await findInstanceByUid(ctx.store, table.instance_uid) : undefined;
  if (!table || !instance || !(await permissionOn(ctx.store, caller, instance))) {
    throw notFound(`${noun[0].toUpperCase()}${noun.slice(1)} '${name}' does not exist.`);
  }
  return { table, instance };
}

/** Changing or deleting a table: its creator, or a CAN_MANAGE holder on its instance. */
export function requireCreatorOrManager(
  caller: IdentityRow,
  table: { creator: string; name: string },
  level: string | undefined,
  instanceName: string,
  what: string,
  noun = 'synced table',
): void {
  if (table.creator === caller.user_name || level === 'CAN_MANAGE') return;
  throw new PierError(
    'PERMISSION_DENIED',
    `User ${caller.user_name} cannot ${what} ${noun} '${table.name}': only its creator or a CAN_MANAGE holder on instance '${instanceName}' can.`,
  );
}
