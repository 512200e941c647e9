/**
 * A subset of HashiCorp's bexpr (the `?filter=` language): `==`, `!=`, `in`, `not in`, `contains`,
 * `not contains`, `is empty`, `is not empty`, `matches`, `not matches`, `and`, `or`, `not`, parentheses; selectors
 * like `Service.Meta.zone`, `Service.Meta["my-key"]`, `Service.Tags`; values as "double", `raw` strings, numbers or
 * booleans. Selectors are checked against a sample of the endpoint's result shape, as bexpr checks them against
 * the Go type, so a typo is an error rather than a filter that silently matches nothing.
 */
import { RE2JS } from 're2js';

export type Predicate = (item: unknown) => boolean;

export class FilterError extends Error {}

/**
 * Deepest nesting of parentheses and `not` a filter may have. The parser is recursive: without a bound, 3,000
 * nested parentheses overflowed the stack (a 500 "Maximum call stack size exceeded"). Consul's grammar allows far
 * more than any real filter uses; 256 keeps the recursion well inside Node's stack.
 */
export const MAX_FILTER_DEPTH = 256;

/** Longest filter expression accepted (characters). */
export const MAX_FILTER_LENGTH = 64 * 1024;

/**
 * `matches` runs on RE2 semantics, as Consul's Go `regexp` does: linear time in the input, no backreferences or
 * lookaround. re2js is a pure-JavaScript port of RE2 (no native code), so `^(a|a)+$` costs no more than `^a+$`.
 */
export const FILTER_REGEX_ENGINE = 're2js';

/** Field names whose value is a Go map (any key may follow them in a selector). */
const MAP_FIELDS = new Set([
  'Meta',
  'NodeMeta',
  'ServiceMeta',
  'TaggedAddresses',
  'ServiceTaggedAddresses',
  'Header',
  'Definition',
]);

type Token =
  | { t: 'ident'; v: string; pos: number }
  | { t: 'string'; v: string; pos: number }
  | { t: 'number'; v: number; pos: number }
  | { t: 'op'; v: string; pos: number };

function tokenize(src: string): Token[] {
  const out: Token[] = [];
  let i = 0;
  while (i < src.length) {
    const ch = src[i]!;
    if (/\s/.test(ch)) {
      i++;
      continue;
    }
    const pos = i;
    if (ch === '"') {
      let s = '';
      i++;
      for (;;) {
        if (i >= src.length) throw new FilterError(`1:${pos + 1} (${pos}): unterminated string`);
        const c = src[i]!;
        if (c === '\\') {
          const n = src[i + 1];
          s += n === 'n' ? '\n' : n === 't' ? '\t' : (n ?? '');
          i += 2;
          continue;
        }
        if (c === '"') {
          i++;
          break;
        }
        s += c;
        i++;
      }
      out.push({ t: 'string', v: s, pos });
      continue;
    }
    if (ch === '`') {
      const end = src.indexOf('`', i + 1);
      if (end < 0) throw new FilterError(`1:${pos + 1} (${pos}): unterminated raw string`);
      out.push({ t: 'string', v: src.slice(i + 1, end), pos });
      i = end + 1;
      continue;
    }
    const two = src.slice(i, i + 2);
    if (two === '==' || two === '!=') {
      out.push({ t: 'op', v: two, pos });
      i += 2;
      continue;
    }
    if ('().[]'.includes(ch)) {
      out.push({ t: 'op', v: ch, pos });
      i++;
      continue;
    }
    const num = /^-?\d+(\.\d+)?/.exec(src.slice(i));
    if (num && (ch === '-' || /\d/.test(ch))) {
      out.push({ t: 'number', v: Number(num[0]), pos });
      i += num[0].length;
      continue;
    }
    const id = /^[A-Za-z_][A-Za-z0-9_\-/]*/.exec(src.slice(i));
    if (id) {
      out.push({ t: 'ident', v: id[0], pos });
      i += id[0].length;
      continue;
    }
    throw new FilterError(`1:${pos + 1} (${pos}): unexpected character ${JSON.stringify(ch)}`);
  }
  return out;
}

type Value = string | number | boolean;

class Parser {
  private i = 0;
  private depth = 0;
  constructor(
    private readonly toks: Token[],
    private readonly sample: unknown,
  ) {}

  parse(): Predicate {
    if (this.toks.length === 0) throw new FilterError('1:1 (0): no match found, expected an expression');
    const p = this.or();
    const rest = this.toks[this.i];
    if (rest) throw this.unexpected(rest);
    return p;
  }

  private peek(): Token | undefined {
    return this.toks[this.i];
  }

  private unexpected(tok: Token | undefined): FilterError {
    if (!tok) return new FilterError('unexpected end of expression');
    return new FilterError(`1:${tok.pos + 1} (${tok.pos}): unexpected ${JSON.stringify(String(tok.v))}`);
  }

  private isWord(word: string, tok = this.peek()): boolean {
    return tok?.t === 'ident' && tok.v === word;
  }

  private or(): Predicate {
    let left = this.and();
    while (this.isWord('or')) {
      this.i++;
      const l = left;
      const r = this.and();
      left = (x) => l(x) || r(x);
    }
    return left;
  }

  private and(): Predicate {
    let left = this.not();
    while (this.isWord('and')) {
      this.i++;
      const l = left;
      const r = this.not();
      left = (x) => l(x) && r(x);
    }
    return left;
  }

  private not(): Predicate {
    if (this.isWord('not')) {
      const tok = this.peek()!;
      this.i++;
      this.enter(tok);
      const inner = this.not();
      this.depth--;
      return (x) => !inner(x);
    }
    return this.primary();
  }

  private enter(tok: Token): void {
    if (++this.depth > MAX_FILTER_DEPTH) {
      throw new FilterError(
        `1:${tok.pos + 1} (${tok.pos}): expression nested deeper than ${MAX_FILTER_DEPTH} levels (parentheses and "not")`,
      );
    }
  }

  private primary(): Predicate {
    const tok = this.peek();
    if (tok?.t === 'op' && tok.v === '(') {
      this.i++;
      this.enter(tok);
      const inner = this.or();
      this.depth--;
      const close = this.peek();
      if (!(close?.t === 'op' && close.v === ')')) throw this.unexpected(close);
      this.i++;
      return inner;
    }
    // value [not] in selector
    if (tok && (tok.t === 'string' || tok.t === 'number')) {
      this.i++;
      const value = tok.v;
      const negate = this.isWord('not');
      if (negate) this.i++;
      if (!this.isWord('in')) throw this.unexpected(this.peek());
      this.i++;
      const sel = this.selector();
      return (x) => contains(resolve(x, sel), value) !== negate;
    }
    const sel = this.selector();
    const op = this.peek();
    if (op?.t === 'op' && (op.v === '==' || op.v === '!=')) {
      this.i++;
      const value = this.value();
      const eq = op.v === '==';
      return (x) => equals(resolve(x, sel), value) === eq;
    }
    if (this.isWord('is')) {
      this.i++;
      const negate = this.isWord('not');
      if (negate) this.i++;
      if (!this.isWord('empty')) throw this.unexpected(this.peek());
      this.i++;
      return (x) => isEmpty(resolve(x, sel)) !== negate;
    }
    const negate = this.isWord('not');
    if (negate) this.i++;
    if (this.isWord('contains')) {
      this.i++;
      const value = this.value();
      return (x) => contains(resolve(x, sel), value) !== negate;
    }
    if (this.isWord('matches')) {
      this.i++;
      const value = this.value();
      let re: RE2JS;
      try {
        re = RE2JS.compile(String(value));
      } catch (err) {
        throw new FilterError(`invalid regular expression: ${(err as Error).message}`);
      }
      return (x) => {
        const v = resolve(x, sel);
        return (typeof v === 'string' && re.test(v)) !== negate;
      };
    }
    throw this.unexpected(this.peek());
  }

  private value(): Value {
    const tok = this.peek();
    if (!tok) throw this.unexpected(tok);
    this.i++;
    if (tok.t === 'string' || tok.t === 'number') return tok.v;
    if (tok.t === 'ident') {
      if (tok.v === 'true') return true;
      if (tok.v === 'false') return false;
      return tok.v; // bexpr accepts bare words as strings
    }
    throw this.unexpected(tok);
  }

  private selector(): string[] {
    const first = this.peek();
    if (first?.t !== 'ident') throw this.unexpected(first);
    this.i++;
    const path = [first.v];
    for (;;) {
      const tok = this.peek();
      if (tok?.t === 'op' && tok.v === '.') {
        const next = this.toks[this.i + 1];
        if (next?.t !== 'ident') throw this.unexpected(next);
        path.push(next.v);
        this.i += 2;
      } else if (tok?.t === 'op' && tok.v === '[') {
        const key = this.toks[this.i + 1];
        const close = this.toks[this.i + 2];
        if (key?.t !== 'string' || !(close?.t === 'op' && close.v === ']')) throw this.unexpected(key);
        path.push(key.v);
        this.i += 3;
      } else break;
    }
    validateSelector(path, this.sample);
    return path;
  }
}

function validateSelector(path: string[], sample: unknown): void {
  let cur: unknown = sample;
  for (let i = 0; i < path.length; i++) {
    const seg = path[i]!;
    if (Array.isArray(cur)) cur = cur[0];
    if (typeof cur !== 'object' || cur === null || !(seg in cur)) {
      throw new FilterError(`Selector ${JSON.stringify(path.join('.'))} is not valid`);
    }
    if (MAP_FIELDS.has(seg)) {
      if (path.length > i + 2) throw new FilterError(`Selector ${JSON.stringify(path.join('.'))} is not valid`);
      return;
    }
    cur = (cur as Record<string, unknown>)[seg];
  }
}

function resolve(item: unknown, path: string[]): unknown {
  let cur: unknown = item;
  for (const seg of path) {
    if (cur === null || cur === undefined) return undefined;
    if (Array.isArray(cur)) {
      cur = cur.map((e) => (e && typeof e === 'object' ? (e as Record<string, unknown>)[seg] : undefined));
      continue;
    }
    if (typeof cur !== 'object' || !Object.prototype.hasOwnProperty.call(cur, seg)) return undefined;
    cur = (cur as Record<string, unknown>)[seg];
  }
  return cur;
}

function coerceEqual(field: unknown, value: Value): boolean {
  if (typeof field === 'number') return field === Number(value);
  if (typeof field === 'boolean') return field === (value === true || value === 'true');
  if (typeof field === 'string') return field === String(value);
  return false;
}

function equals(field: unknown, value: Value): boolean {
  if (Array.isArray(field)) return field.some((f) => coerceEqual(f, value));
  return coerceEqual(field, value);
}

function contains(field: unknown, value: Value): boolean {
  if (Array.isArray(field)) return field.some((f) => coerceEqual(f, value));
  if (typeof field === 'string') return field.includes(String(value));
  if (field && typeof field === 'object') return Object.prototype.hasOwnProperty.call(field, String(value));
  return false;
}

function isEmpty(field: unknown): boolean {
  if (field === undefined || field === null || field === '') return true;
  if (Array.isArray(field)) return field.length === 0;
  if (typeof field === 'object') return Object.keys(field).length === 0;
  return false;
}

/** Compiles a filter expression against a sample of the items it will see; throws FilterError when invalid. */
export function compileFilter(expression: string, sample: unknown): Predicate {
  if (expression.length > MAX_FILTER_LENGTH) {
    throw new FilterError(`expression longer than ${MAX_FILTER_LENGTH} characters`);
  }
  return new Parser(tokenize(expression), sample).parse();
}
