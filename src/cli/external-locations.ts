import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Command } from 'commander';
import { invalidParameter } from '../errors.js';
import { call } from './api-client.js';
import { bodyOf, credentials, listAll, pageFlags, segment, UPDATE_FIELDS, updateFlags } from './catalog.js';
import { printJson } from './output.js';

/**
 * `pier external-locations create|get|list|update|delete`, as
 * `databricks external-locations …`: `create NAME URL [CREDENTIAL_NAME]`
 * (no cloud credential applies to a local directory, so it is optional).
 */

const PATH = '/api/2.1/unity-catalog/external-locations';

/** A URL as given, or a local path (relative to the working directory) as a file:// URL. */
function locationUrl(value: string): string {
  return /^[a-z][a-z0-9+.-]*:/i.test(value) ? value : pathToFileURL(resolve(value)).href;
}

export function registerExternalLocations(program: Command): void {
  const locations = program
    .command('external-locations')
    .description('Unity Catalog external locations: directories EXTERNAL tables may be registered in.');
  locations
    .command('create <NAME> [URL] [CREDENTIAL_NAME]')
    .description('Create an external location (admins only) for a directory: file:///dir or a path.')
    .option('--url <url>', 'The directory, if not given as URL.')
    .option('--credential-name <name>', 'Kept as given; a local directory needs no credential.')
    .option('--comment <text>', 'User-provided free-form text description.')
    .option('--read-only', 'Indicates whether the external location is read-only.')
    .option('--skip-validation', 'Accepted for compatibility.')
    .option('--json <json>', 'Request body as inline JSON or @path/to/file.json.')
    .action(
      async (
        name: string,
        url: string | undefined,
        credentialName: string | undefined,
        options: Record<string, unknown>,
        command: Command,
      ) => {
        const body = bodyOf(options, [
          ['credentialName', 'credential_name'],
          ['comment', 'comment'],
          ['readOnly', 'read_only'],
          ['skipValidation', 'skip_validation'],
        ]);
        const given = url ?? (options.url as string | undefined) ?? (body.url as string | undefined);
        if (!given)
          throw invalidParameter('Give the directory: pier external-locations create NAME file:///dir');
        body.url = locationUrl(given);
        if (credentialName !== undefined) body.credential_name = credentialName;
        body.name = name;
        printJson(await call(credentials(command), 'POST', PATH, { body }));
      },
    );
  locations
    .command('get <NAME>')
    .description('Get an external location.')
    .action(async (name: string, _options: unknown, command: Command) => {
      printJson(await call(credentials(command), 'GET', `${PATH}/${segment(name)}`));
    });
  pageFlags(
    locations.command('list').description('List the external locations you hold a privilege on.'),
  ).action(async (options: { maxResults?: number; pageToken?: string }, command: Command) => {
    await listAll(credentials(command), PATH, 'external_locations', {
      max_results: options.maxResults ?? 0,
      page_token: options.pageToken,
    });
  });
  updateFlags(
    locations
      .command('update <NAME>')
      .description('Update an external location: comment, owner, new name, url, read-only.')
      .option('--url <url>', 'A new directory (tables left outside it need --force).')
      .option('--credential-name <name>', 'Kept as given; a local directory needs no credential.')
      .option('--read-only', 'Indicates whether the external location is read-only.')
      .option('--force', 'Move the url even if registered tables end up outside it.'),
    'external location',
  ).action(async (name: string, options: Record<string, unknown>, command: Command) => {
    const body = bodyOf(options, [
      ...UPDATE_FIELDS,
      ['credentialName', 'credential_name'],
      ['readOnly', 'read_only'],
      ['force', 'force'],
    ]);
    if (typeof options.url === 'string') body.url = locationUrl(options.url);
    printJson(await call(credentials(command), 'PATCH', `${PATH}/${segment(name)}`, { body }));
  });
  locations
    .command('delete <NAME>')
    .description('Delete an external location (its files are not touched).')
    .option('--force', 'Delete it even if tables are registered under it.')
    .action(async (name: string, options: { force?: boolean }, command: Command) => {
      await call(credentials(command), 'DELETE', `${PATH}/${segment(name)}`, {
        query: { force: options.force },
      });
    });
}
