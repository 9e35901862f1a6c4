import {
  createDatabaseCatalog,
  databaseCatalogView,
  deleteDatabaseCatalog,
  getDatabaseCatalog,
  listDatabaseCatalogs,
} from '../catalog/database-catalogs.js';
import { invalidParameter } from '../errors.js';
import { nextPage, type RouteGroup, readJson } from './request.js';

/**
 * `/api/2.0/database/catalogs…` and `/api/2.0/database/instances/{name}/catalogs`:
 * the SDK's `w.database.createDatabaseCatalog` and friends.
 */
export const databaseCatalogRoutes: RouteGroup = (app, ctx) => {
  app.post('/api/2.0/database/catalogs', async (c) => {
    const catalog = await createDatabaseCatalog(ctx, c.var.caller, await readJson(c));
    return c.json(await databaseCatalogView(ctx.store, catalog));
  });

  app.get('/api/2.0/database/catalogs/:name', async (c) => {
    const catalog = await getDatabaseCatalog(ctx, c.var.caller, c.req.param('name'));
    return c.json(await databaseCatalogView(ctx.store, catalog));
  });

  app.patch('/api/2.0/database/catalogs/:name', async () => {
    throw invalidParameter('Updating a database catalog is not supported; delete it and create it again.');
  });

  app.delete('/api/2.0/database/catalogs/:name', async (c) => {
    await deleteDatabaseCatalog(ctx, c.var.caller, c.req.param('name'));
    return c.json({});
  });

  app.get('/api/2.0/database/instances/:name/catalogs', async (c) => {
    const { catalogs, nextPageToken } = await listDatabaseCatalogs(
      ctx,
      c.var.caller,
      c.req.param('name'),
      c.req.query(),
    );
    const views = [];
    for (const catalog of catalogs) views.push(await databaseCatalogView(ctx.store, catalog));
    return c.json({ database_catalogs: views, ...nextPage(nextPageToken) });
  });
};
