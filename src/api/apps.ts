import { createDeployment, getDeployment, listDeployments, runEnvironment } from '../apps/deployments.js';
import { appLogs } from '../apps/logs.js';
import { createApp, deleteApp, getApp, listApps, setAppCompute, updateApp } from '../apps/service.js';
import { appView, deploymentView } from '../apps/view.js';
import { nextPage, type RouteGroup, readJson } from './request.js';

/**
 * `/api/2.0/apps…`: the SDK's `w.apps` (create, get, list, update, delete,
 * deploy, get/list deployments, start, stop), and Pier's own `environment`
 * (for `pier apps run`) and `logs`.
 */
export const appRoutes: RouteGroup = (app, ctx) => {
  app.post('/api/2.0/apps', async (c) =>
    c.json(appView(await createApp(ctx, c.var.caller, await readJson(c), c.req.query()))),
  );

  app.get('/api/2.0/apps', async (c) => {
    const { results, nextPageToken } = await listApps(ctx, c.var.caller, c.req.query());
    return c.json({ apps: results.map(appView), ...nextPage(nextPageToken) });
  });

  app.get('/api/2.0/apps/:name', async (c) =>
    c.json(appView(await getApp(ctx, c.var.caller, c.req.param('name')))),
  );

  app.patch('/api/2.0/apps/:name', async (c) =>
    c.json(appView(await updateApp(ctx, c.var.caller, c.req.param('name'), await readJson(c)))),
  );

  app.delete('/api/2.0/apps/:name', async (c) =>
    c.json(appView(await deleteApp(ctx, c.var.caller, c.req.param('name')))),
  );

  app.post('/api/2.0/apps/:name/start', async (c) =>
    c.json(appView(await setAppCompute(ctx, c.var.caller, c.req.param('name'), 'ACTIVE'))),
  );

  app.post('/api/2.0/apps/:name/stop', async (c) =>
    c.json(appView(await setAppCompute(ctx, c.var.caller, c.req.param('name'), 'STOPPED'))),
  );

  app.post('/api/2.0/apps/:name/deployments', async (c) =>
    c.json(deploymentView(await createDeployment(ctx, c.var.caller, c.req.param('name'), await readJson(c)))),
  );

  app.get('/api/2.0/apps/:name/deployments', async (c) => {
    const { rows, nextPageToken } = await listDeployments(
      ctx,
      c.var.caller,
      c.req.param('name'),
      c.req.query(),
    );
    return c.json({ app_deployments: rows.map(deploymentView), ...nextPage(nextPageToken) });
  });

  app.get('/api/2.0/apps/:name/deployments/:id', async (c) =>
    c.json(deploymentView(await getDeployment(ctx, c.var.caller, c.req.param('name'), c.req.param('id')))),
  );

  app.post('/api/2.0/apps/:name/environment', async (c) =>
    c.json({ environment: await runEnvironment(ctx, c.var.caller, c.req.param('name'), await readJson(c)) }),
  );

  app.get('/api/2.0/apps/:name/logs', async (c) => {
    const { text, nextOffset } = await appLogs(ctx, c.var.caller, c.req.param('name'), c.req.query());
    return c.json({ logs: text, next_offset: nextOffset });
  });
};
