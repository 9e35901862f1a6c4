import { getPipeline, listPipelineUpdates, startPipelineUpdate } from '../sync/pipelines.js';
import { pipelineView, updateView } from '../sync/view.js';
import { nextPage, type RouteGroup, readJson } from './request.js';

/** `/api/2.0/pipelines/{id}…`: the pipelines service, as far as synced tables need it. */
export const pipelineRoutes: RouteGroup = (app, ctx) => {
  app.get('/api/2.0/pipelines/:id', async (c) =>
    c.json(pipelineView(await getPipeline(ctx, c.var.caller, c.req.param('id')))),
  );

  app.post('/api/2.0/pipelines/:id/updates', async (c) => {
    const update = await startPipelineUpdate(ctx, c.var.caller, c.req.param('id'), await readJson(c));
    return c.json({ update_id: update.id });
  });

  app.get('/api/2.0/pipelines/:id/updates', async (c) => {
    const { updates, nextPageToken } = await listPipelineUpdates(
      ctx,
      c.var.caller,
      c.req.param('id'),
      c.req.query(),
    );
    return c.json({ updates: updates.map(updateView), ...nextPage(nextPageToken) });
  });
};
