import { tableHistory, tablePreview } from '../catalog/table-data.js';
import { tableHistoryView } from '../catalog/views.js';
import { instanceMetricSamples, syncedTablePasses } from '../metrics/service.js';
import { metricPointsView, syncPassesView } from '../metrics/view.js';
import { wakeBranchEndpoint } from '../postgres/endpoint-wake.js';
import { endpointRecord } from '../postgres/records.js';
import { endpointView } from '../postgres/view.js';
import type { RouteGroup } from './request.js';

const PIER = '/api/2.0/pier';

/**
 * Pier's own routes behind the console (docs/console.md): a Delta table's
 * history and first rows, an instance's sampled metrics, a synced table's
 * passes (all read-only), and waking a suspended Autoscaling endpoint.
 * Databricks has no such routes; the same caller rules apply as to the
 * resources they read or change.
 */
export const consoleDataRoutes: RouteGroup = (app, ctx) => {
  app.get(`${PIER}/tables/:full_name/history`, async (c) => {
    const history = await tableHistory(ctx, c.var.caller, c.req.param('full_name'), c.req.query('limit'));
    return c.json(tableHistoryView(history));
  });
  app.get(`${PIER}/tables/:full_name/preview`, async (c) =>
    c.json(await tablePreview(ctx, c.var.caller, c.req.param('full_name'), c.req.query('limit'))),
  );
  app.get(`${PIER}/database/instances/:name/metrics`, async (c) =>
    c.json(
      metricPointsView(
        await instanceMetricSamples(ctx, c.var.caller, c.req.param('name'), c.req.query('minutes')),
      ),
    ),
  );
  app.get(`${PIER}/database/synced_tables/:name/passes`, async (c) =>
    c.json(
      syncPassesView(await syncedTablePasses(ctx, c.var.caller, c.req.param('name'), c.req.query('minutes'))),
    ),
  );
  // Answers with the endpoint as it is now (INIT while its server starts).
  app.post(`${PIER}/postgres/projects/:project/branches/:branch/endpoints/:endpoint/wake`, async (c) => {
    const row = await wakeBranchEndpoint(
      ctx,
      c.var.caller,
      c.req.param('project'),
      c.req.param('branch'),
      c.req.param('endpoint'),
    );
    const current = await endpointRecord(ctx, ctx.store, row);
    return c.json(endpointView(current));
  });
};
