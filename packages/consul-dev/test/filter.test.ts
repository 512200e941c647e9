import assert from 'node:assert/strict';
import { compileFilter, FilterError } from '../src/filter.js';

const entry = (zone: string, tags: string[], port = 80) => ({
  Node: { Node: 'n1', Meta: {} },
  Service: { ID: 'x', Tags: tags, Meta: { zone, 'my-key': 'v' }, Port: port },
  Checks: [{ Status: 'passing' }],
});
const SAMPLE = entry('', []);

describe('filter (bexpr subset)', () => {
  const run = (expr: string, item: unknown) => compileFilter(expr, SAMPLE)(item);

  it('matches Service.Meta.x == "y" and !=', () => {
    assert.equal(run('Service.Meta.zone == "eu"', entry('eu', [])), true);
    assert.equal(run('Service.Meta.zone == "eu"', entry('us', [])), false);
    assert.equal(run('Service.Meta.zone != "eu"', entry('us', [])), true);
    assert.equal(run('Service.Meta.missing == "eu"', entry('us', [])), false);
  });

  it('matches "t" in Service.Tags, Service.Tags contains "t" and their negations', () => {
    assert.equal(run('"v2" in Service.Tags', entry('', ['v1', 'v2'])), true);
    assert.equal(run('Service.Tags contains "v3"', entry('', ['v1', 'v2'])), false);
    assert.equal(run('"v3" not in Service.Tags', entry('', ['v1'])), true);
    assert.equal(run('Service.Tags not contains "v1"', entry('', ['v1'])), false);
  });

  it('combines with and/or/not and parentheses', () => {
    const e = entry('eu', ['a']);
    assert.equal(run('Service.Meta.zone == "eu" and "a" in Service.Tags', e), true);
    assert.equal(run('Service.Meta.zone == "us" or "a" in Service.Tags', e), true);
    assert.equal(run('not (Service.Meta.zone == "eu")', e), false);
    assert.equal(run('(Service.Meta.zone == us) or Service.Port == 80', e), true);
  });

  it('supports is empty, matches, bracketed keys and numbers', () => {
    assert.equal(run('Service.Tags is empty', entry('', [])), true);
    assert.equal(run('Service.Tags is not empty', entry('', ['a'])), true);
    assert.equal(run('Service.Meta.zone matches "^eu-"', entry('eu-1', [])), true);
    assert.equal(run('Service.Meta["my-key"] == `v`', entry('', [])), true);
    assert.equal(run('Service.Port == 8080', entry('', [], 8080)), true);
    assert.equal(run('Checks.Status == passing', entry('', [])), true);
  });

  it('rejects unknown selectors and syntax errors', () => {
    assert.throws(() => compileFilter('Service.Nope == "x"', SAMPLE), FilterError);
    assert.throws(() => compileFilter('Service.Meta.zone ==', SAMPLE), FilterError);
    assert.throws(() => compileFilter('Service.Meta.zone = "x"', SAMPLE), FilterError);
    assert.throws(() => compileFilter('', SAMPLE), FilterError);
    assert.throws(() => compileFilter('"x" in', SAMPLE), FilterError);
  });
});
