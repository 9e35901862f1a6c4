import { forgetStoppedNode, listJudgedNodes } from '../nodes/service.js';
import { nodeLoads } from '../nodes/store.js';
import { nodeView } from '../nodes/view.js';
import { type RouteGroup, requireAdmin } from './request.js';

/** Pier's own (admins): the Pier processes that share this store, and whether each is alive. */
export const nodeRoutes: RouteGroup = (app, ctx) => {
  app.get('/api/2.0/pier/nodes', async (c) => {
    requireAdmin(c.var.caller, 'list the Pier nodes');
    const [nodes, loads] = await Promise.all([listJudgedNodes(ctx), nodeLoads(ctx.store)]);
    return c.json({
      nodes: nodes.map((node) =>
        nodeView(node, {
          thisNode: ctx.config.nodeId,
          ...(loads.get(node.node_id) ?? { instances: 0, pipelines: 0 }),
        }),
      ),
    });
  });

  app.delete('/api/2.0/pier/nodes/:id', async (c) => {
    requireAdmin(c.var.caller, 'forget a Pier node');
    await forgetStoppedNode(ctx, c.req.param('id'));
    return c.json({});
  });
};
