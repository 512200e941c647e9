import { parse } from 'yaml';
import { ConfigError } from '@shoal/core';

/** The one set of YAML parser options for Shoal's config documents. */
const YAML_OPTIONS = {
  prettyErrors: true,
  // An alias expanding into more than 100 nodes ("billion laughs") is refused, not expanded.
  maxAliasCount: 100,
  // 'error': YAML warnings (process.emitWarning) would print the offending line, token and all.
  logLevel: 'error',
} as const;

/**
 * Parses YAML text into the raw document (not validated): the one loader of Shoal's YAML documents — the
 * coordinator's config file and the policy CLI's policy files. Throws `ConfigError`
 * (`<source> is not valid YAML: <what> at line L, column C`) naming what and where without quoting the text, which
 * may hold a token.
 */
export function parseYamlDocument(text: string, source: string): unknown {
  try {
    return parse(text, YAML_OPTIONS) as unknown;
  } catch (error) {
    // The first line says what and where ("... at line 3, column 5"); the excerpt after it quotes the file.
    const what = (error as Error).message.split('\n')[0]!.replace(/:$/, '');
    throw new ConfigError(`${source} is not valid YAML: ${what}`);
  }
}
