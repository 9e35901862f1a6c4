import { Hono } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { authenticateBearer } from '../auth/personal-access-tokens.js';
import type { ControlContext } from '../control/context.js';
import { optionalInteger } from '../control/validate.js';
import { PierError } from '../errors.js';
import type { IdentityRow } from '../identities/store.js';
import { databaseCatalogRoutes } from './database-catalogs.js';
import { databaseInstanceRoutes } from './instances.js';
import { errorEnvelope } from './errors.js';
import { identityRoutes } from './identities.js';
import { unityCatalogRoutes } from './unity-catalog.js';

export type ApiEnv = { Variables: { caller: IdentityRow } };

/** Extra route groups (catalog, credentials, …) mounted by other modules. */
export type RouteGroup = (app: Hono<ApiEnv>, ctx: ControlContext) => void;

export const MAX_BODY_BYTES = 1024 * 1024;

/**
 * The Databricks-shaped REST API. Every request under /api needs a bearer
 * token; every error leaves as the Databricks envelope `{error_code, message}`.
 */
export function createApi(
  ctx: ControlContext,
  options: { log?: (message: string) => void; routes?: RouteGroup[] } = {},
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

  app.get('/health', (c) => c.json({ status: 'ok' }));

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
    c.set('caller', await authenticateBearer(ctx.store, c.req.header('authorization')));
    await next();
  });

  identityRoutes(app, ctx);
  databaseInstanceRoutes(app, ctx);
  unityCatalogRoutes(app, ctx);
  databaseCatalogRoutes(app, ctx);
  for (const routes of options.routes ?? []) routes(app, ctx);
  return app;
}

/** Parses a JSON request body; an empty body is `{}`; anything unparsable is MALFORMED_REQUEST. */
export async function readJson(c: { req: { text(): Promise<string> } }): Promise<unknown> {
  const text = await c.req.text();
  if (text.trim() === '') return {};
  try {
    return JSON.parse(text);
  } catch (cause) {
    throw new PierError(
      'MALFORMED_REQUEST',
      `The request body is not valid JSON: ${(cause as Error).message}`,
    );
  }
}

/**
 * An integer field or query parameter that may be absent, and is refused
 * with INVALID_PARAMETER_VALUE above `max` (a huge number must never reach
 * the store as an out-of-range value).
 *
 * @example
 * const start = integerAtMost(c.req.query(), 'startIndex', 2 ** 31 - 1) ?? 1;
 */
export function integerAtMost(
  params: Record<string, unknown>,
  field: string,
  max: number,
): number | undefined {
  const value = optionalInteger(params, field);
  if (value !== undefined && value > max) {
    throw new PierError('INVALID_PARAMETER_VALUE', `${field} must be at most ${max}, got ${params[field]}.`);
  }
  return value;
}

/** Admin-only operations. */
export function requireAdmin(caller: IdentityRow, what: string): void {
  if (!caller.is_admin) {
    throw new PierError(
      'PERMISSION_DENIED',
      `Only workspace admins can ${what}; ${caller.user_name} is not an admin.`,
    );
  }
}
