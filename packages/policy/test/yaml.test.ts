import assert from 'node:assert/strict';
import { hasErrorCode } from '@shoal/core';
import { parseYamlDocument } from '@shoal/policy/internal';
import { YAML_ALIAS_BOMB } from '../../../test/kit/index.js';

describe('parseYamlDocument (the one YAML loader: coordinator config, policy CLI)', () => {
  it('parses a document', () => {
    assert.deepEqual(parseYamlDocument('a: 1\nb: [x, y]\n', 'f.yaml'), { a: 1, b: ['x', 'y'] });
  });

  it('refuses an alias bomb with SHOAL_ERR_CONFIG naming the source', () => {
    assert.throws(
      () => parseYamlDocument(YAML_ALIAS_BOMB, 'bomb.yaml'),
      (e: Error) =>
        hasErrorCode(e, 'SHOAL_ERR_CONFIG') && /^bomb\.yaml is not valid YAML: Excessive alias count/.test(e.message),
    );
  });

  it('names line and column of a syntax error without quoting the text (it may hold a token)', () => {
    assert.throws(
      () => parseYamlDocument('token: s3cret-token-value\nservices: [\n', 'c.yaml'),
      (e: Error) =>
        hasErrorCode(e, 'SHOAL_ERR_CONFIG') &&
        /^c\.yaml is not valid YAML: .* at line \d+, column \d+$/.test(e.message) &&
        !e.message.includes('s3cret') &&
        !e.message.includes('services'),
    );
  });
});
