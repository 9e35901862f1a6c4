import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { withInstanceDatabase } from '../catalog/database-live.js';
import { addTableLineage } from '../catalog/lineage.js';
import type { ControlContext } from '../control/context.js';
import { asObject, optionalInteger, optionalString } from '../control/validate.js';
import { invalidParameter, notFound, PierError } from '../errors.js';
import type { IdentityRow } from '../identities/store.js';
import { instanceForCaller, permissionOn } from '../instances/permissions.js';
import type { InstanceRow } from '../instances/store.js';
import { collectPage, decodePageToken } from '../pagination.js';
import { forgetLease } from '../store/leases.js';
import { loadOnInstance, requireCreatorOrManager } from './access.js';
import { refuseTakenName } from './database-tables.js';
import { resolvePlace } from './names.js';
import {
  deletePipelineIfUnused,
  findPipeline,
  insertPipeline,
  insertUpdate,
  PIPELINE_LEASE,
} from './pipelines-store.js';
import { checkSource } from './source.js';
import { loadSource, parseSpec } from './spec.js';
import {
  countSyncedTablesOfSource,
  deleteSyncedTableRow,
  findSyncedTable,
  findSyncedTableByTarget,
  insertSyncedTable,
  listSyncedTablesOfInstance,
  type SyncedTableRow,
} from './store.js';

/** At most this many synced tables follow one source table (as Lakebase documents). */
const MAX_SYNCED_TABLES_PER_SOURCE = 20;

/** A synced table and the name of its instance, for the view. */
export interface SyncedTableRecord {
  table: SyncedTableRow;
  instanceName: string;
}

/**
 * `POST /api/2.0/database/synced_tables`. Needs CAN_USE on the instance and
 * SELECT on the source. Every rule is checked before anything is written;
 * the synced table, its pipeline (or the existing one it joins), the first
 * update and the lineage edge are recorded in one transaction.
 */
export async function createSyncedTable(
  ctx: ControlContext,
  caller: IdentityRow,
  input: unknown,
): Promise<SyncedTableRecord> {
  const body = asObject(input, 'The synced table');
  const spec = parseSpec(body.spec);
  const instanceName = optionalString(body, 'database_instance_name');
  const databaseName = optionalString(body, 'logical_database_name');
  const given = instanceName
    ? await instanceForCaller(ctx.store, caller, instanceName, 'CAN_USE')
    : undefined;
  const place = await resolvePlace(ctx.store, body.name as string, {
    ...(given ? { instance: given } : {}),
    ...(databaseName ? { databaseName } : {}),
  });
  if (!given) await instanceForCaller(ctx.store, caller, place.instance.name, 'CAN_USE');
  const path = await loadSource(ctx, caller, spec.source_table_full_name);
  await checkSource({
    path,
    sourceName: spec.source_table_full_name,
    primaryKey: spec.primary_key_columns,
    ...(spec.timeseries_key ? { timeseriesKey: spec.timeseries_key } : {}),
    policy: spec.scheduling_policy,
  });
  return ctx.store.transaction(async (tx) => {
    // One creation per source at a time, so the limit holds under concurrent requests.
    await tx.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`synced:${spec.source_table_full_name}`]);
    if (await findSyncedTable(tx, place.name)) {
      throw new PierError('RESOURCE_ALREADY_EXISTS', `Synced table '${place.name}' already exists.`);
    }
    await refuseTakenName(tx, place.name);
    const target = {
      instance_uid: place.instance.uid,
      database_name: place.databaseName,
      target_schema: place.targetSchema,
      target_table: place.targetTable,
    };
    const taken = await findSyncedTableByTarget(tx, target);
    if (taken) {
      throw new PierError(
        'RESOURCE_ALREADY_EXISTS',
        `Postgres table ${place.targetSchema}.${place.targetTable} of database '${place.databaseName}' is already synced table '${taken.name}'.`,
      );
    }
    if ((await countSyncedTablesOfSource(tx, spec.source_table_full_name)) >= MAX_SYNCED_TABLES_PER_SOURCE) {
      throw new PierError(
        'RESOURCE_EXHAUSTED',
        `Source table ${spec.source_table_full_name} already has ${MAX_SYNCED_TABLES_PER_SOURCE} synced tables, the most one source may have. Delete one, or sync from a copy of the table.`,
      );
    }
    let pipelineId: string;
    if (spec.existing_pipeline_id) {
      const pipeline = await findPipeline(tx, spec.existing_pipeline_id, true);
      if (!pipeline) throw notFound(`Pipeline '${spec.existing_pipeline_id}' does not exist.`);
      if (pipeline.instance_uid !== place.instance.uid || pipeline.database_name !== place.databaseName) {
        throw invalidParameter(
          `Pipeline '${pipeline.id}' syncs into another instance or database; a shared pipeline serves one database. Leave existing_pipeline_id out to get a new one.`,
        );
      }
      pipelineId = pipeline.id;
    } else {
      pipelineId = (
        await insertPipeline(tx, {
          id: randomUUID(),
          instance_uid: place.instance.uid,
          database_name: place.databaseName,
          creator: caller.user_name,
        })
      ).id;
    }
    const table = await insertSyncedTable(tx, {
      id: randomUUID(),
      name: place.name,
      ...target,
      spec,
      source_table_full_name: spec.source_table_full_name,
      source_location: path,
      pipeline_id: pipelineId,
      creator: caller.user_name,
    });
    await insertUpdate(tx, {
      id: randomUUID(),
      pipeline_id: pipelineId,
      full_refresh: false,
      cause: 'API_CALL',
    });
    await addTableLineage(tx, { source: spec.source_table_full_name, target: place.name });
    return { table, instanceName: place.instance.name };
  });
}

/** The synced table, if the caller holds a permission on its instance (else it does not exist for them). */
export async function loadForCaller(
  ctx: ControlContext,
  caller: IdentityRow,
  rawName: string,
): Promise<SyncedTableRecord & { instance: InstanceRow }> {
  const { table, instance } = await loadOnInstance(ctx, caller, rawName, findSyncedTable, 'synced table');
  return { table, instanceName: instance.name, instance };
}

export async function getSyncedTable(
  ctx: ControlContext,
  caller: IdentityRow,
  name: string,
): Promise<SyncedTableRecord> {
  const { table, instanceName } = await loadForCaller(ctx, caller, name);
  return { table, instanceName };
}

/** `GET /api/2.0/database/instances/{instance}/synced_tables`: CAN_USE on the instance. */
export async function listSyncedTables(
  ctx: ControlContext,
  caller: IdentityRow,
  instanceName: string,
  query: Record<string, string | undefined>,
): Promise<{ tables: SyncedTableRecord[]; nextPageToken?: string }> {
  const instance = await instanceForCaller(ctx.store, caller, instanceName, 'CAN_USE');
  const size = optionalInteger(query, 'page_size') ?? 0;
  if (size < 0) throw invalidParameter(`page_size must be 0 or more, got ${size}.`);
  const page = await collectPage(
    { afterName: decodePageToken(query.page_token), limit: size === 0 ? 100 : Math.min(size, 100) },
    (after, limit) => listSyncedTablesOfInstance(ctx.store, instance.uid, after, limit),
  );
  return {
    tables: page.items.map((table) => ({ table, instanceName: instance.name })),
    nextPageToken: page.nextPageToken,
  };
}

/**
 * `DELETE /api/2.0/database/synced_tables/{name}`: the creator, or CAN_MANAGE
 * on the instance. The Postgres table stays unless `purgeData`.
 */
export async function deleteSyncedTable(
  ctx: ControlContext,
  caller: IdentityRow,
  name: string,
  purgeData: boolean,
): Promise<void> {
  const { table, instance } = await loadForCaller(ctx, caller, name);
  const level = await permissionOn(ctx.store, caller, instance);
  requireCreatorOrManager(caller, table, level, instance.name, 'delete');
  await ctx.store.transaction(async (tx) => {
    await deleteSyncedTableRow(tx, table.id);
    if (await deletePipelineIfUnused(tx, table.pipeline_id))
      await forgetLease(tx, PIPELINE_LEASE, table.pipeline_id);
    if (purgeData) {
      // Inside the transaction: a purge that fails keeps the synced table.
      await withInstanceDatabase(ctx, instance, table.database_name, async (client) => {
        await client.query(
          `DROP TABLE IF EXISTS ${pg.escapeIdentifier(table.target_schema)}.${pg.escapeIdentifier(table.target_table)}`,
        );
        const { rows } = await client.query(
          "SELECT to_regclass('pier_sync.progress') IS NOT NULL AS present",
        );
        if (rows[0].present) {
          await client.query(
            'DELETE FROM pier_sync.progress WHERE target_schema = $1 AND target_table = $2',
            [table.target_schema, table.target_table],
          );
        }
      });
    }
  });
}
