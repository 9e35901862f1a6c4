import {
  changeInstancePermissions,
  getInstancePermissions,
  instanceForCaller,
} from '../instances/permissions.js';
import {
  childRefsOf,
  createInstance,
  deleteInstance,
  findInstanceForCallerByUid,
  getInstance,
  listInstances,
  updateInstance,
} from '../instances/service.js';
import type { InstanceRow } from '../instances/store.js';
import { instancePermissionsView, instanceView, permissionLevelsView } from '../instances/view.js';
import { nextPage, type RouteGroup, readJson } from './request.js';

/** `/api/2.0/database/instances…` and `/api/2.0/permissions/database-instances/…`. */
export const databaseInstanceRoutes: RouteGroup = (app, ctx) => {
  const views = async (rows: InstanceRow[], withInputs = false) => {
    const children = await childRefsOf(ctx, rows);
    return rows.map((row) =>
      instanceView(row, ctx.config, ctx.engine.pgMajorVersion, {
        withInputs,
        children: children.get(row.uid),
      }),
    );
  };
  const view = async (row: InstanceRow, withInputs = false) => (await views([row], withInputs))[0];

  app.post('/api/2.0/database/instances', async (c) => {
    const row = await createInstance(ctx, c.var.caller, await readJson(c));
    return c.json(await view(row, true));
  });

  app.get('/api/2.0/database/instances', async (c) => {
    const { rows, nextPageToken } = await listInstances(ctx, c.var.caller, c.req.query());
    return c.json({
      database_instances: await views(rows),
      ...nextPage(nextPageToken),
    });
  });

  // `instances:findByUid` is one path segment; match it before `:name` would.
  app.get('/api/2.0/database/:segment{instances:findByUid}', async (c) => {
    const row = await findInstanceForCallerByUid(ctx, c.var.caller, c.req.query('uid'));
    return c.json(await view(row));
  });

  app.get('/api/2.0/database/instances/:name', async (c) => {
    return c.json(await view(await getInstance(ctx, c.var.caller, c.req.param('name'))));
  });

  app.patch('/api/2.0/database/instances/:name', async (c) => {
    const row = await updateInstance(
      ctx,
      c.var.caller,
      c.req.param('name'),
      c.req.query('update_mask'),
      await readJson(c),
    );
    return c.json(await view(row, true));
  });

  app.delete('/api/2.0/database/instances/:name', async (c) => {
    await deleteInstance(ctx, c.var.caller, c.req.param('name'), c.req.query());
    return c.json({});
  });

  app.get('/api/2.0/permissions/database-instances/:name/permissionLevels', async (c) => {
    await instanceForCaller(ctx.store, c.var.caller, c.req.param('name'), 'CAN_USE');
    return c.json(permissionLevelsView());
  });

  app.get('/api/2.0/permissions/database-instances/:name', async (c) => {
    return c.json(
      instancePermissionsView(await getInstancePermissions(ctx, c.var.caller, c.req.param('name'))),
    );
  });

  app.put('/api/2.0/permissions/database-instances/:name', async (c) => {
    const body = await readJson(c);
    return c.json(
      instancePermissionsView(
        await changeInstancePermissions(ctx, c.var.caller, c.req.param('name'), body, 'replace'),
      ),
    );
  });

  app.patch('/api/2.0/permissions/database-instances/:name', async (c) => {
    const body = await readJson(c);
    return c.json(
      instancePermissionsView(
        await changeInstancePermissions(ctx, c.var.caller, c.req.param('name'), body, 'add'),
      ),
    );
  });
};
