import type { Hono } from 'hono';
import type { ControlContext } from '../control/context.js';
import { optionalInteger } from '../control/validate.js';
import { PierError } from '../errors.js';
import type { IdentityRow } from '../identities/store.js';

/** What every route sees: the authenticated caller, set by the API's bearer-token middleware. */
export type ApiEnv = { Variables: { caller: IdentityRow } };

/**
 * A group of routes for one resource. Every group has this shape and is
 * mounted in one place (`ROUTE_GROUPS` in api/app.ts).
 *
 * @example
 * export const syncedTableRoutes: RouteGroup = (app, ctx) => {
 *   app.get('/api/2.0/database/synced_tables/:name', async (c) =>
 *     c.json(syncedTableView(await getSyncedTable(ctx, c.var.caller, c.req.param('name')))));
 * };
 */
export type RouteGroup = (app: Hono<ApiEnv>, ctx: ControlContext) => void;

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

/** A list response's `next_page_token`, present only when there is a next page. */
export function nextPage(token: string | undefined): { next_page_token?: string } {
  return token ? { next_page_token: token } : {};
}
