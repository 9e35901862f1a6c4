import { Hono } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { routePath } from 'hono/route';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import type { ControlContext } from '../control/context.js';
import { PierError } from '../errors.js';
import { pierMetrics } from '../metrics/registry.js';
import { databaseAccessRoutes } from './access.js';
import { appRoutes } from './apps.js';
import { backupRoutes } from './backups.js';
import { authenticateRequest, type ConnectionFacts, mountConsole } from './console.js';
import { consoleDataRoutes } from './console-data.js';
import { databaseCatalogRoutes } from './database-catalogs.js';
import { errorEnvelope } from './errors.js';
import { identityRoutes } from './identities.js';
import { databaseInstanceRoutes } from './instances.js';
import { nodeRoutes } from './nodes.js';
import { oauthRoutes } from './oauth.js';
import { pipelineRoutes } from './pipelines.js';
import { postgresRoutes } from './postgres.js';
import type { ApiEnv, RouteGroup } from './request.js';
import { syncedTableRoutes } from './synced-tables.js';
import { unityCatalogRoutes } from './unity-catalog.js';

/**
 * Every route group, mounted in this order. A new resource adds its group
 * here (see docs/architecture.md).
 */
const ROUTE_GROUPS: RouteGroup[] = [
  identityRoutes,
  databaseInstanceRoutes,
  unityCatalogRoutes,
  databaseCatalogRoutes,
  databaseAccessRoutes,
  syncedTableRoutes,
  pipelineRoutes,
  appRoutes,
  oauthRoutes,
  consoleDataRoutes,
  postgresRoutes,
  backupRoutes,
  nodeRoutes,
];

const MAX_BODY_BYTES = 1024 * 1024;

/**
 * The Databricks-shaped REST API and the console. Every request under /api
 * needs a bearer token (or the console's session cookie); every error leaves
 * as the Databricks envelope `{error_code, message}`.
 */
export function createApi(
  ctx: ControlContext,
  options: { log?: (message: string) => void; connection?: ConnectionFacts } = {},
): Hono<ApiEnv> {
  const app = new Hono<ApiEnv>();

  app.onError((error, c) => {
    const { status, body } = errorEnvelope(error, options.log);
    // The rest of an oversize body is never read: close rather than reuse the connection.
    if (status === 413) c.header('Connection', 'close');
    return c.json(body, status as ContentfulStatusCode);
  });
  app.notFound((c) =>
    c.json(
      {
        error_code: 'ENDPOINT_NOT_FOUND',
        message: `No API found for '${c.req.method} ${new URL(c.req.url).pathname}'.`,
      },
      404,
    ),
  );

  // Requests by route template (never the raw path: names would explode the label set).
  app.use('*', async (c, next) => {
    await next();
    const route = routePath(c);
    pierMetrics.apiRequests.inc({
      route: route.endsWith('*') ? 'unmatched' : route,
      method: c.req.method,
      status: String(c.res.status),
    });
  });

  app.get('/health', (c) => c.json({ status: 'ok' }));
  mountConsole(app, ctx, options.connection ?? { proxyPort: 5432 });

  app.use(
    '/api/*',
    bodyLimit({
      maxSize: MAX_BODY_BYTES,
      onError: () => {
        throw new PierError('REQUEST_TOO_LARGE', `The request body is larger than ${MAX_BODY_BYTES} bytes.`);
      },
    }),
  );
  app.use('/api/*', async (c, next) => {
    c.set('caller', await authenticateRequest(ctx, c));
    await next();
  });

  for (const routes of ROUTE_GROUPS) routes(app, ctx);
  return app;
}
