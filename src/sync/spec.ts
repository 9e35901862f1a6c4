import { parseTableFullName } from '../catalog/names.js';
import { Access } from '../catalog/privileges.js';
import {
  catalogSecurable,
  isDatabaseCatalog,
  loadCatalog,
  loadStoredSchema,
  loadStoredTable,
  schemaSecurable,
  tableSecurable,
} from '../catalog/resolve.js';
import type { ControlContext } from '../control/context.js';
import { asObject, optionalBoolean, optionalString } from '../control/validate.js';
import { invalidParameter } from '../errors.js';
import type { IdentityRow } from '../identities/store.js';
import type { SchedulingPolicy } from './pipeline.js';
import type { SyncedTableSpec } from './store.js';

/** The spec of a synced table as the API takes it, and the source it names. */

export const POLICIES: SchedulingPolicy[] = ['SNAPSHOT', 'TRIGGERED', 'CONTINUOUS'];

export function parseSpec(value: unknown): SyncedTableSpec {
  const spec = asObject(value ?? {}, 'spec');
  const source = optionalString(spec, 'source_table_full_name');
  if (!source) {
    throw invalidParameter(
      `Field 'spec.source_table_full_name' is required: the Delta table to sync (<catalog>.<schema>.<table>).`,
    );
  }
  const { catalog, schema, table } = parseTableFullName(source);
  const keys = spec.primary_key_columns ?? [];
  if (!Array.isArray(keys) || keys.some((key) => typeof key !== 'string' || key === '')) {
    throw invalidParameter('spec.primary_key_columns must be an array of column names.');
  }
  const policy = optionalString(spec, 'scheduling_policy') ?? 'SNAPSHOT';
  if (!POLICIES.includes(policy as SchedulingPolicy)) {
    throw invalidParameter(
      `spec.scheduling_policy '${policy}' is not valid; use one of ${POLICIES.join(', ')}.`,
    );
  }
  const timeseries = optionalString(spec, 'timeseries_key');
  const existing = optionalString(spec, 'existing_pipeline_id');
  const create = optionalBoolean(spec, 'create_database_objects_if_missing');
  return {
    source_table_full_name: `${catalog}.${schema}.${table}`,
    primary_key_columns: keys as string[],
    scheduling_policy: policy as SchedulingPolicy,
    ...(timeseries ? { timeseries_key: timeseries } : {}),
    ...(existing ? { existing_pipeline_id: existing } : {}),
    ...(create !== undefined ? { create_database_objects_if_missing: create } : {}),
    ...(spec.new_pipeline_spec && typeof spec.new_pipeline_spec === 'object'
      ? { new_pipeline_spec: spec.new_pipeline_spec as Record<string, unknown> }
      : {}),
  };
}

/** The source table, which the caller must be able to SELECT; returns its directory. */
export async function loadSource(
  ctx: ControlContext,
  caller: IdentityRow,
  fullName: string,
): Promise<string> {
  const names = parseTableFullName(fullName);
  const catalog = await loadCatalog(ctx.store, names.catalog);
  if (isDatabaseCatalog(catalog)) {
    throw invalidParameter(
      `Source table ${fullName} is a Postgres table of a database catalog; a synced table's source is a Delta table.`,
    );
  }
  const schema = await loadStoredSchema(ctx.store, catalog, names.schema);
  const table = await loadStoredTable(ctx.store, catalog, schema, names.table);
  const access = await Access.load(ctx.store, caller, [
    catalogSecurable(catalog),
    schemaSecurable(catalog, schema),
    tableSecurable(catalog, schema, table),
  ]);
  access.require('USE_CATALOG', 0);
  if (!access.ownsUpTo(1)) access.require('USE_SCHEMA', 1);
  access.require('SELECT', 2);
  return table.storage_path;
}
