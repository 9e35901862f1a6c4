import { generateDatabaseCredential } from '../access/credentials.js';
import { createRole, deleteRole, getRole, listRoles } from '../access/roles.js';
import { databaseCredentialView, roleView } from '../access/view.js';
import { type RouteGroup, readJson, requireAdmin } from './request.js';

/**
 * Database credentials, instance roles and the JWKS that verifies
 * credentials (`/oidc/v1/keys`, also at `/.well-known/jwks.json`, no token needed).
 */
export const databaseAccessRoutes: RouteGroup = (app, ctx) => {
  app.post('/api/2.0/database/credentials', async (c) =>
    c.json(databaseCredentialView(await generateDatabaseCredential(ctx, c.var.caller, await readJson(c)))),
  );

  const roles = '/api/2.0/database/instances/:instance/roles';
  app.post(roles, async (c) =>
    c.json(roleView(await createRole(ctx, c.var.caller, c.req.param('instance'), await readJson(c)))),
  );
  app.get(roles, async (c) => {
    const listed = await listRoles(ctx, c.var.caller, c.req.param('instance'));
    return c.json({ database_instance_roles: listed.map(roleView) });
  });
  app.get(`${roles}/:name`, async (c) =>
    c.json(roleView(await getRole(ctx, c.var.caller, c.req.param('instance'), c.req.param('name')))),
  );
  app.delete(`${roles}/:name`, async (c) => {
    await deleteRole(ctx, c.var.caller, c.req.param('instance'), c.req.param('name'), c.req.query());
    return c.json({});
  });

  for (const path of ['/oidc/v1/keys', '/.well-known/jwks.json'])
    app.get(path, (c) => c.json(ctx.keys.jwks()));

  // Pier's own (admins): sign new credentials with a fresh key now; tokens already issued keep working.
  app.post('/api/2.0/pier/signing-keys/rotate', async (c) => {
    requireAdmin(c.var.caller, 'rotate the credential signing key');
    const key = await ctx.keys.rotate();
    return c.json({ kid: key.kid, created_at: key.createdAt, keys: ctx.keys.jwks().keys.map((k) => k.kid) });
  });
};
