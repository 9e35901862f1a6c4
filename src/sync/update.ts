import { randomUUID } from 'node:crypto';
import type { ControlContext } from '../control/context.js';
import { asObject, optionalString } from '../control/validate.js';
import { invalidParameter, notFound } from '../errors.js';
import type { IdentityRow } from '../identities/store.js';
import { permissionOn } from '../instances/permissions.js';
import { requireCreatorOrManager } from './access.js';
import type { SchedulingPolicy } from './pipeline.js';
import { insertUpdate } from './pipelines-store.js';
import { loadForCaller, type SyncedTableRecord } from './service.js';
import { checkSource } from './source.js';
import { POLICIES } from './spec.js';
import {
  findSyncedTable,
  type SyncedTableRow,
  type SyncedTableSpec,
  updateSyncedTableSpec,
} from './store.js';

/** Fields `update_mask` may name. */
const UPDATABLE = ['spec.scheduling_policy'];

/**
 * `PATCH /api/2.0/database/synced_tables/{name}?update_mask=…`: the
 * creator or CAN_MANAGE on the instance may change the scheduling policy
 * (the Change Data Feed rule applies again); the table then catches up at
 * once under its new policy. Other fields need a new synced table.
 */
export async function updateSyncedTable(
  ctx: ControlContext,
  caller: IdentityRow,
  name: string,
  updateMask: string | undefined,
  input: unknown,
): Promise<SyncedTableRecord> {
  const { table, instance } = await loadForCaller(ctx, caller, name);
  requireCreatorOrManager(
    caller,
    table,
    await permissionOn(ctx.store, caller, instance),
    instance.name,
    'update',
  );
  const fields = (updateMask ?? '')
    .split(',')
    .map((f) => f.trim())
    .filter(Boolean);
  if (fields.length === 0) {
    throw invalidParameter(
      `Query parameter 'update_mask' is required: the fields to change (${UPDATABLE.join(', ')}).`,
    );
  }
  const refused = fields.find((f) => !UPDATABLE.includes(f));
  if (refused) {
    throw invalidParameter(
      `'${refused}' cannot be changed on a synced table (only ${UPDATABLE.join(', ')}); delete it (its Postgres table is kept) and create it again.`,
    );
  }
  const body = asObject(input, 'The synced table');
  const spec = asObject(body.spec ?? {}, 'spec');
  const policy = optionalString(spec, 'scheduling_policy');
  if (!policy || !POLICIES.includes(policy as SchedulingPolicy)) {
    throw invalidParameter(
      `update_mask names spec.scheduling_policy, so the body needs spec.scheduling_policy: one of ${POLICIES.join(', ')}.`,
    );
  }
  const next: SyncedTableSpec = { ...table.spec, scheduling_policy: policy as SchedulingPolicy };
  await checkSource({
    path: table.source_location,
    sourceName: table.source_table_full_name,
    primaryKey: next.primary_key_columns,
    ...(next.timeseries_key ? { timeseriesKey: next.timeseries_key } : {}),
    policy: next.scheduling_policy,
  });
  const updated = await ctx.store.transaction(async (tx) => {
    const locked = await findSyncedTable(tx, table.name, true);
    if (!locked) throw notFound(`Synced table '${table.name}' does not exist.`);
    await updateSyncedTableSpec(tx, locked.id, next);
    await insertUpdate(tx, {
      id: randomUUID(),
      pipeline_id: locked.pipeline_id,
      full_refresh: false,
      cause: 'API_CALL',
    });
    return (await findSyncedTable(tx, table.name)) as SyncedTableRow;
  });
  return { table: updated, instanceName: instance.name };
}
