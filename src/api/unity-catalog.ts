import {
  createCatalog,
  deleteCatalog,
  getCatalog,
  listCatalogs,
  updateCatalog,
} from '../catalog/catalogs.js';
import {
  createExternalLocation,
  deleteExternalLocation,
  getExternalLocation,
  listExternalLocations,
  updateExternalLocation,
} from '../catalog/external-locations.js';
import { getEffectivePermissions, getPermissions, updatePermissions } from '../catalog/grants.js';
import { getTableLineage } from '../catalog/lineage.js';
import {
  createSchema,
  deleteSchema,
  getSchema,
  listSchemas,
  type SchemaResult,
  updateSchema,
} from '../catalog/schemas.js';
import {
  createTable,
  deleteTable,
  getTable,
  listTables,
  type TableResult,
  tableExists,
  updateTable,
} from '../catalog/tables.js';
import {
  catalogView,
  effectivePermissionsView,
  externalLocationView,
  getMetastoreId,
  permissionsView,
  schemaView,
  tableLineageView,
  tableView,
} from '../catalog/views.js';
import { nextPage, type RouteGroup, readJson } from './request.js';

const UC = '/api/2.1/unity-catalog';

/**
 * Unity Catalog's REST API for catalogs, schemas, tables, external locations and grants
 * (`/api/2.1/unity-catalog/…`), and table lineage
 * (`/api/2.0/lineage-tracking/table-lineage`).
 */
export const unityCatalogRoutes: RouteGroup = (app, ctx) => {
  const metastore = () => getMetastoreId(ctx.store);
  const schemaJson = async ({ catalog, schema }: SchemaResult) =>
    schemaView(catalog, schema, await metastore());
  const tableJson = async ({ catalog, schemaName, table }: TableResult) =>
    tableView(catalog, schemaName, table, await metastore());

  // ---- catalogs
  app.post(`${UC}/catalogs`, async (c) => {
    return c.json(catalogView(await createCatalog(ctx, c.var.caller, await readJson(c)), await metastore()));
  });
  app.get(`${UC}/catalogs`, async (c) => {
    const page = await listCatalogs(ctx, c.var.caller, c.req.query());
    const id = await metastore();
    return c.json({
      catalogs: page.items.map((row) => catalogView(row, id)),
      ...nextPage(page.nextPageToken),
    });
  });
  app.get(`${UC}/catalogs/:name`, async (c) => {
    return c.json(catalogView(await getCatalog(ctx, c.var.caller, c.req.param('name')), await metastore()));
  });
  app.patch(`${UC}/catalogs/:name`, async (c) => {
    const row = await updateCatalog(ctx, c.var.caller, c.req.param('name'), await readJson(c));
    return c.json(catalogView(row, await metastore()));
  });
  app.delete(`${UC}/catalogs/:name`, async (c) => {
    await deleteCatalog(ctx, c.var.caller, c.req.param('name'), c.req.query());
    return c.json({});
  });

  // ---- schemas
  app.post(`${UC}/schemas`, async (c) => {
    return c.json(await schemaJson(await createSchema(ctx, c.var.caller, await readJson(c))));
  });
  app.get(`${UC}/schemas`, async (c) => {
    const { catalog, page } = await listSchemas(ctx, c.var.caller, c.req.query());
    const id = await metastore();
    return c.json({
      schemas: page.items.map((schema) => schemaView(catalog, schema, id)),
      ...nextPage(page.nextPageToken),
    });
  });
  app.get(`${UC}/schemas/:full_name`, async (c) => {
    return c.json(await schemaJson(await getSchema(ctx, c.var.caller, c.req.param('full_name'))));
  });
  app.patch(`${UC}/schemas/:full_name`, async (c) => {
    return c.json(
      await schemaJson(await updateSchema(ctx, c.var.caller, c.req.param('full_name'), await readJson(c))),
    );
  });
  app.delete(`${UC}/schemas/:full_name`, async (c) => {
    await deleteSchema(ctx, c.var.caller, c.req.param('full_name'), c.req.query());
    return c.json({});
  });

  // ---- tables
  app.post(`${UC}/tables`, async (c) => {
    return c.json(await tableJson(await createTable(ctx, c.var.caller, await readJson(c))));
  });
  app.get(`${UC}/tables`, async (c) => {
    const query = c.req.query();
    const { catalog, schemaName, page } = await listTables(ctx, c.var.caller, query);
    const id = await metastore();
    const omitColumns = query.omit_columns === 'true';
    return c.json({
      tables: page.items.map((table) => tableView(catalog, schemaName, table, id, { omitColumns })),
      ...nextPage(page.nextPageToken),
    });
  });
  app.get(`${UC}/tables/:full_name/exists`, async (c) => {
    return c.json({ table_exists: await tableExists(ctx, c.var.caller, c.req.param('full_name')) });
  });
  app.get(`${UC}/tables/:full_name`, async (c) => {
    return c.json(await tableJson(await getTable(ctx, c.var.caller, c.req.param('full_name'))));
  });
  app.patch(`${UC}/tables/:full_name`, async (c) => {
    return c.json(
      await tableJson(await updateTable(ctx, c.var.caller, c.req.param('full_name'), await readJson(c))),
    );
  });
  app.delete(`${UC}/tables/:full_name`, async (c) => {
    await deleteTable(ctx, c.var.caller, c.req.param('full_name'));
    return c.json({});
  });

  // ---- external locations
  app.post(`${UC}/external-locations`, async (c) => {
    const row = await createExternalLocation(ctx, c.var.caller, await readJson(c));
    return c.json(externalLocationView(row, await metastore()));
  });
  app.get(`${UC}/external-locations`, async (c) => {
    const page = await listExternalLocations(ctx, c.var.caller, c.req.query());
    const id = await metastore();
    return c.json({
      external_locations: page.items.map((row) => externalLocationView(row, id)),
      ...nextPage(page.nextPageToken),
    });
  });
  app.get(`${UC}/external-locations/:name`, async (c) => {
    const row = await getExternalLocation(ctx, c.var.caller, c.req.param('name'));
    return c.json(externalLocationView(row, await metastore()));
  });
  app.patch(`${UC}/external-locations/:name`, async (c) => {
    const row = await updateExternalLocation(ctx, c.var.caller, c.req.param('name'), await readJson(c));
    return c.json(externalLocationView(row, await metastore()));
  });
  app.delete(`${UC}/external-locations/:name`, async (c) => {
    await deleteExternalLocation(ctx, c.var.caller, c.req.param('name'), c.req.query());
    return c.json({});
  });

  // ---- grants
  app.get(`${UC}/permissions/:type/:full_name`, async (c) => {
    const { type, full_name } = c.req.param();
    const grants = await getPermissions(ctx, c.var.caller, type, full_name, c.req.query('principal'));
    return c.json(permissionsView(grants));
  });
  app.patch(`${UC}/permissions/:type/:full_name`, async (c) => {
    const { type, full_name } = c.req.param();
    const grants = await updatePermissions(ctx, c.var.caller, type, full_name, await readJson(c));
    return c.json(permissionsView(grants));
  });
  app.get(`${UC}/effective-permissions/:type/:full_name`, async (c) => {
    const { type, full_name } = c.req.param();
    const grants = await getEffectivePermissions(
      ctx,
      c.var.caller,
      type,
      full_name,
      c.req.query('principal'),
    );
    return c.json(effectivePermissionsView(grants));
  });

  // ---- lineage
  app.get('/api/2.0/lineage-tracking/table-lineage', async (c) => {
    return c.json(tableLineageView(await getTableLineage(ctx, c.var.caller, c.req.query('table_name'))));
  });
};
