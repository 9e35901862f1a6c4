import {
  createDatabaseTable,
  databaseTableView,
  deleteDatabaseTable,
  getDatabaseTable,
} from '../sync/database-tables.js';
import { createSyncedTable, deleteSyncedTable, getSyncedTable, listSyncedTables } from '../sync/service.js';
import { updateSyncedTable } from '../sync/update.js';
import { syncedTableView } from '../sync/view.js';
import { nextPage, type RouteGroup, readJson } from './request.js';

/**
 * `/api/2.0/database/synced_tables…` and `/api/2.0/database/instances/{name}/synced_tables`:
 * the SDK's `w.database.createSyncedDatabaseTable` and friends; and
 * `/api/2.0/database/tables…`, existing Postgres tables registered in the
 * catalog (`w.database.createDatabaseTable`, get, delete).
 */
export const syncedTableRoutes: RouteGroup = (app, ctx) => {
  app.post('/api/2.0/database/synced_tables', async (c) =>
    c.json(syncedTableView(await createSyncedTable(ctx, c.var.caller, await readJson(c)))),
  );

  app.get('/api/2.0/database/synced_tables/:name', async (c) =>
    c.json(syncedTableView(await getSyncedTable(ctx, c.var.caller, c.req.param('name')))),
  );

  app.patch('/api/2.0/database/synced_tables/:name', async (c) => {
    const mask = c.req.query('update_mask');
    const table = await updateSyncedTable(ctx, c.var.caller, c.req.param('name'), mask, await readJson(c));
    return c.json(syncedTableView(table));
  });

  app.delete('/api/2.0/database/synced_tables/:name', async (c) => {
    await deleteSyncedTable(ctx, c.var.caller, c.req.param('name'), c.req.query('purge_data') === 'true');
    return c.json({});
  });

  app.get('/api/2.0/database/instances/:name/synced_tables', async (c) => {
    const { tables, nextPageToken } = await listSyncedTables(
      ctx,
      c.var.caller,
      c.req.param('name'),
      c.req.query(),
    );
    return c.json({ synced_tables: tables.map(syncedTableView), ...nextPage(nextPageToken) });
  });

  app.post('/api/2.0/database/tables', async (c) =>
    c.json(databaseTableView(await createDatabaseTable(ctx, c.var.caller, await readJson(c)))),
  );

  app.get('/api/2.0/database/tables/:name', async (c) =>
    c.json(databaseTableView(await getDatabaseTable(ctx, c.var.caller, c.req.param('name')))),
  );

  app.delete('/api/2.0/database/tables/:name', async (c) => {
    await deleteDatabaseTable(ctx, c.var.caller, c.req.param('name'));
    return c.json({});
  });
};
