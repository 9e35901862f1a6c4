import { randomUUID } from 'node:crypto';
import type { Queryable } from '../store/store.js';
import type { ExternalLocationRow } from './external-locations-store.js';
import type { EffectiveGrant } from './grants.js';
import type { GrantRow } from './grants-store.js';
import type { TableLineage } from './lineage.js';
import type { LineageEdge } from './lineage-store.js';
import type { CatalogRow, ColumnInfo, SchemaRow, TableRow } from './store.js';

/**
 * Unity Catalog's JSON shapes (CatalogInfo, SchemaInfo, TableInfo,
 * ExternalLocationInfo, privilege assignments, table lineage) from
 * store rows and from objects read live from a database catalog's Postgres.
 */

/** A schema of a database catalog, as Postgres has it. */
export interface LiveSchema {
  name: string;
  owner: string;
}

/** A table of a database catalog, as Postgres has it. */
export interface LiveTable {
  name: string;
  owner: string;
  table_type: 'FOREIGN' | 'VIEW';
  columns: ColumnInfo[];
  /** A synced table's pipeline. */
  pipeline_id?: string;
}

const metastoreIds = new WeakMap<Queryable, string>();

/** This Pier's metastore id: made once, kept in the store's settings. */
export async function getMetastoreId(db: Queryable): Promise<string> {
  const cached = metastoreIds.get(db);
  if (cached) return cached;
  await db.query(
    `INSERT INTO settings (key, value) VALUES ('metastore_id', $1) ON CONFLICT (key) DO NOTHING`,
    [JSON.stringify(randomUUID())],
  );
  const { rows } = await db.query<{ value: string }>(`SELECT value FROM settings WHERE key = 'metastore_id'`);
  metastoreIds.set(db, rows[0].value);
  return rows[0].value;
}

const millis = (date: Date) => date.getTime();

function audited(row: CatalogRow | SchemaRow | TableRow) {
  return {
    owner: row.owner,
    ...(row.comment !== null ? { comment: row.comment } : {}),
    properties: row.properties,
    created_at: millis(row.created_at),
    created_by: row.created_by,
    updated_at: millis(row.updated_at),
    updated_by: row.updated_by,
  };
}

export function catalogView(row: CatalogRow, metastore: string) {
  return {
    name: row.name,
    full_name: row.name,
    catalog_type: row.catalog_type,
    securable_type: 'CATALOG',
    isolation_mode: 'OPEN',
    browse_only: false,
    metastore_id: metastore,
    id: row.id,
    ...(row.storage_root ? { storage_root: row.storage_root } : {}),
    ...(row.catalog_type === 'MANAGED_ONLINE_CATALOG' ? { provisioning_info: { state: 'ACTIVE' } } : {}),
    ...audited(row),
  };
}

export function schemaView(catalog: CatalogRow, row: SchemaRow | LiveSchema, metastore: string) {
  const stored = 'id' in row;
  return {
    name: row.name,
    catalog_name: catalog.name,
    catalog_type: catalog.catalog_type,
    full_name: `${catalog.name}.${row.name}`,
    browse_only: false,
    metastore_id: metastore,
    ...(stored ? { schema_id: row.id, ...audited(row) } : { owner: row.owner, properties: {} }),
    // Pier's extension: a database-backed schema names what it shows (as its POST body did).
    ...(stored && row.database_instance_name
      ? { database_instance_name: row.database_instance_name, database_name: row.database_name }
      : {}),
  };
}

export function tableView(
  catalog: CatalogRow,
  schemaName: string,
  row: TableRow | LiveTable,
  metastore: string,
  options: { omitColumns?: boolean } = {},
) {
  const stored = 'id' in row;
  return {
    name: row.name,
    catalog_name: catalog.name,
    schema_name: schemaName,
    full_name: `${catalog.name}.${schemaName}.${row.name}`,
    table_type: row.table_type,
    data_source_format: stored ? row.data_source_format : 'POSTGRESQL_FORMAT',
    ...(stored ? { storage_location: row.storage_location } : {}),
    ...(options.omitColumns ? {} : { columns: row.columns }),
    ...(!stored && row.pipeline_id ? { pipeline_id: row.pipeline_id } : {}),
    browse_only: false,
    metastore_id: metastore,
    ...(stored ? { table_id: row.id, ...audited(row) } : { owner: row.owner, properties: {} }),
  };
}

/** The SDK's ExternalLocationInfo. */
export function externalLocationView(row: ExternalLocationRow, metastore: string) {
  return {
    name: row.name,
    url: row.url,
    ...(row.credential_name !== null ? { credential_name: row.credential_name } : {}),
    read_only: row.read_only,
    isolation_mode: 'ISOLATION_MODE_OPEN',
    browse_only: false,
    fallback: false,
    enable_file_events: false,
    metastore_id: metastore,
    owner: row.owner,
    ...(row.comment !== null ? { comment: row.comment } : {}),
    created_at: millis(row.created_at),
    created_by: row.created_by,
    updated_at: millis(row.updated_at),
    updated_by: row.updated_by,
  };
}

/** Databricks' PrivilegeAssignment list: rows in order, one entry per principal at its first grant. */
function privilegeAssignments<T>(rows: { principal: string; privilege: T }[]) {
  const byPrincipal = new Map<string, T[]>();
  for (const row of rows)
    byPrincipal.set(row.principal, [...(byPrincipal.get(row.principal) ?? []), row.privilege]);
  return {
    privilege_assignments: [...byPrincipal].map(([principal, privileges]) => ({ principal, privileges })),
  };
}

/** The SDK's PermissionsList (`GET`/`PATCH /permissions/…`): direct grants by principal. */
export function permissionsView(grants: GrantRow[]) {
  return privilegeAssignments(grants);
}

/** The SDK's EffectivePermissionsList: each privilege with where it is inherited from, if not made on the object. */
export function effectivePermissionsView(grants: EffectiveGrant[]) {
  return privilegeAssignments(
    grants.map(({ grant, inheritedFrom }) => ({
      principal: grant.principal,
      privilege: {
        privilege: grant.privilege,
        ...(inheritedFrom
          ? { inherited_from_type: inheritedFrom.type, inherited_from_name: inheritedFrom.fullName }
          : {}),
      },
    })),
  );
}

/** Databricks' TableInfo inside a lineage response, for the table at `end` of the edge. */
function lineageTableInfo(edge: LineageEdge, end: 'source_name' | 'target_name') {
  const [catalog_name, schema_name, name] = edge[end].split('.');
  return {
    tableInfo: {
      name,
      catalog_name,
      schema_name,
      table_type: 'TABLE',
      lineage_timestamp: edge.created_at.toISOString().replace('T', ' ').replace('Z', ''),
    },
  };
}

/** The lineage-tracking API's table lineage: upstream tables, then downstream ones. */
export function tableLineageView({ upstreams, downstreams }: TableLineage) {
  return {
    upstreams: upstreams.map((edge) => lineageTableInfo(edge, 'source_name')),
    downstreams: downstreams.map((edge) => lineageTableInfo(edge, 'target_name')),
  };
}
