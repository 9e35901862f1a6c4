import { asObject, optionalInteger, optionalString } from '../control/validate.js';
import {
  createOAuthSecret,
  deleteOAuthSecretOf,
  listOAuthSecretsOf,
  parseLifetime,
} from '../identities/oauth-secrets.js';
import {
  createToken,
  createUser,
  findUser,
  getUser,
  listOwnTokens,
  listUsers,
  removeUser,
  revokeToken,
} from '../identities/service.js';
import {
  createServicePrincipal,
  deleteServicePrincipal,
  getServicePrincipal,
  listServicePrincipals,
  servicePrincipalInput,
} from '../identities/service-principals.js';
import type { IdentityRow } from '../identities/store.js';
import {
  createdOAuthSecretView,
  createdTokenView,
  oauthSecretsView,
  servicePrincipalView,
  tokenInfosView,
  userView,
} from '../identities/view.js';
import { integerAtMost, type RouteGroup, readJson, requireAdmin } from './request.js';

const SCIM = '/api/2.0/preview/scim/v2';
/** Far beyond any workspace; past it the offset would overflow the store's bigint. */
const MAX_SCIM_START_INDEX = 2 ** 31 - 1;

/** SCIM Me/Users/ServicePrincipals and personal access tokens. */
export const identityRoutes: RouteGroup = (app, ctx) => {
  app.get(`${SCIM}/Me`, (c) => c.json(userView(c.var.caller)));

  app.get(`${SCIM}/Users`, async (c) => c.json(await scimList(c.req.query(), listUsers, userView)));

  app.post(`${SCIM}/Users`, async (c) => {
    requireAdmin(c.var.caller, 'create users');
    return c.json(userView(await createUser(ctx, await readJson(c))), 201);
  });

  app.get(`${SCIM}/Users/:id`, async (c) => c.json(userView(await getUser(ctx, c.req.param('id')))));

  app.delete(`${SCIM}/Users/:id`, async (c) => {
    requireAdmin(c.var.caller, 'delete users');
    await removeUser(ctx, c.var.caller, c.req.param('id'));
    return c.body(null, 204);
  });

  app.get(`${SCIM}/ServicePrincipals`, async (c) =>
    c.json(await scimList(c.req.query(), listServicePrincipals, servicePrincipalView)),
  );
  app.post(`${SCIM}/ServicePrincipals`, async (c) => {
    requireAdmin(c.var.caller, 'create service principals');
    return c.json(
      servicePrincipalView(await createServicePrincipal(ctx, servicePrincipalInput(await readJson(c)))),
      201,
    );
  });
  app.get(`${SCIM}/ServicePrincipals/:id`, async (c) =>
    c.json(servicePrincipalView(await getServicePrincipal(ctx, c.req.param('id')))),
  );
  app.delete(`${SCIM}/ServicePrincipals/:id`, async (c) => {
    requireAdmin(c.var.caller, 'delete service principals');
    await deleteServicePrincipal(ctx, c.var.caller, c.req.param('id'));
    return c.body(null, 204);
  });

  // OAuth secrets, at the path the SDK's and CLI's service-principal-secrets-proxy use in a workspace.
  const SECRETS = '/api/2.0/accounts/servicePrincipals/:id/credentials/secrets';
  app.post(SECRETS, async (c) => {
    requireAdmin(c.var.caller, 'create OAuth secrets');
    const body = asObject(await readJson(c), 'The request body');
    const created = await createOAuthSecret(ctx, c.req.param('id'), parseLifetime(body.lifetime));
    return c.json(createdOAuthSecretView(created));
  });
  app.get(SECRETS, async (c) => {
    requireAdmin(c.var.caller, 'list OAuth secrets');
    return c.json(oauthSecretsView(await listOAuthSecretsOf(ctx, c.req.param('id'))));
  });
  app.delete(`${SECRETS}/:secretId`, async (c) => {
    requireAdmin(c.var.caller, 'delete OAuth secrets');
    await deleteOAuthSecretOf(ctx, c.req.param('id'), c.req.param('secretId'));
    return c.json({});
  });

  /** A SCIM ListResponse page: `startIndex` (1-based) and `count` as RFC 7644 reads them. */
  async function scimList<T>(
    query: Record<string, string>,
    list: typeof listUsers,
    view: (row: IdentityRow) => T,
  ) {
    // A startIndex below 1 means 1, a count beyond the page limit gets the limit.
    const start = Math.max(1, integerAtMost(query, 'startIndex', MAX_SCIM_START_INDEX) ?? 1);
    const count = Math.min(1000, Math.max(0, optionalInteger(query, 'count') ?? 100));
    const { rows, total } = await list(ctx, { offset: start - 1, limit: count });
    return {
      schemas: ['urn:ietf:params:scim:api:messages:2.0:ListResponse'],
      totalResults: total,
      startIndex: start,
      itemsPerPage: rows.length,
      Resources: rows.map(view),
    };
  }

  app.post('/api/2.0/token/create', async (c) =>
    c.json(createdTokenView(await createToken(ctx, c.var.caller, await readJson(c)))),
  );
  app.get('/api/2.0/token/list', async (c) => c.json(tokenInfosView(await listOwnTokens(ctx, c.var.caller))));
  app.post('/api/2.0/token/delete', async (c) => {
    await revokeToken(ctx, c.var.caller, await readJson(c));
    return c.json({});
  });

  // Admins mint tokens for other identities (Databricks' token-management API).
  app.post('/api/2.0/token-management/on-behalf-of/tokens', async (c) => {
    requireAdmin(c.var.caller, 'create tokens for other users');
    const body = asObject(await readJson(c), 'The request body');
    const owner = await findUser(ctx, optionalString(body, 'application_id') ?? '');
    return c.json(createdTokenView(await createToken(ctx, owner, body)));
  });
};
