import type { Command } from 'commander';
import { call } from './api-client.js';
import { bodyOf, credentials, listAll, segment } from './catalog.js';
import { printJson } from './output.js';

/**
 * `pier service-principals create|list|get|delete` and
 * `pier service-principal-secrets create|list|delete SERVICE_PRINCIPAL_ID`,
 * as `databricks service-principals …` and
 * `databricks service-principal-secrets-proxy …` (also accepted as a name).
 */

const SCIM = '/api/2.0/preview/scim/v2/ServicePrincipals';
const secretsPath = (id: string) => `/api/2.0/accounts/servicePrincipals/${segment(id)}/credentials/secrets`;

export function registerServicePrincipalCommands(program: Command): void {
  const sps = program
    .command('service-principals')
    .description('Identities for apps and automation: OAuth clients that log in as their own Postgres role.');
  sps
    .command('create')
    .description(
      'Create a service principal (admins only); its applicationId is its client id and role name.',
    )
    .option('--display-name <name>', 'String that represents a concatenation of given and family names.')
    .option('--application-id <uuid>', 'UUID relating to the service principal (Pier picks one if omitted).')
    .option('--json <json>', 'Request body as inline JSON or @path/to/file.json.')
    .action(async (options: Record<string, unknown>, command: Command) => {
      const body = bodyOf(options, [
        ['displayName', 'displayName'],
        ['applicationId', 'applicationId'],
      ]);
      printJson(await call(credentials(command), 'POST', SCIM, { body }));
    });
  sps
    .command('get <ID>')
    .description('Get a service principal by its id.')
    .action(async (id: string, _options: unknown, command: Command) => {
      printJson(await call(credentials(command), 'GET', `${SCIM}/${segment(id)}`));
    });
  sps
    .command('list')
    .description('List the service principals.')
    .option('--start-index <n>', 'Index of the first result (1-based).', (v) => Number(v))
    .option('--count <n>', 'Desired number of results per page.', (v) => Number(v))
    .action(async (options: { startIndex?: number; count?: number }, command: Command) => {
      const creds = credentials(command);
      const all: unknown[] = [];
      let start = options.startIndex ?? 1;
      for (;;) {
        const page = await call<{ Resources?: unknown[]; totalResults?: number }>(creds, 'GET', SCIM, {
          query: { startIndex: start, count: options.count ?? 100 },
        });
        const resources = page.Resources ?? [];
        all.push(...resources);
        start += resources.length;
        if (resources.length === 0 || options.count !== undefined || start > (page.totalResults ?? 0)) break;
      }
      printJson(all);
    });
  sps
    .command('delete <ID>')
    .description('Delete a service principal: its permissions, grants and secrets go with it.')
    .action(async (id: string, _options: unknown, command: Command) => {
      await call(credentials(command), 'DELETE', `${SCIM}/${segment(id)}`);
    });

  const secrets = program
    .command('service-principal-secrets')
    .alias('service-principal-secrets-proxy')
    .description('OAuth client secrets of service principals (admins only).');
  secrets
    .command('create <SERVICE_PRINCIPAL_ID>')
    .description('Create a secret; the value is shown this once.')
    .option('--lifetime <duration>', 'The lifetime of the secret in seconds, e.g. 3600s (default 730 days).')
    .option('--json <json>', 'Request body as inline JSON or @path/to/file.json.')
    .action(async (id: string, options: Record<string, unknown>, command: Command) => {
      const body = bodyOf(options, [['lifetime', 'lifetime']]);
      printJson(await call(credentials(command), 'POST', secretsPath(id), { body }));
    });
  secrets
    .command('list <SERVICE_PRINCIPAL_ID>')
    .description('List the secrets of a service principal (never their values).')
    .action(async (id: string, _options: unknown, command: Command) => {
      await listAll(credentials(command), secretsPath(id), 'secrets', {});
    });
  secrets
    .command('delete <SERVICE_PRINCIPAL_ID> <SECRET_ID>')
    .description('Delete a secret: it no longer gets tokens; tokens issued with it run out on their own.')
    .action(async (id: string, secretId: string, _options: unknown, command: Command) => {
      await call(credentials(command), 'DELETE', `${secretsPath(id)}/${segment(secretId)}`);
    });
}
