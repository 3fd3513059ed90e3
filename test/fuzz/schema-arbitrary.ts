import fc from 'fast-check';

/**
 * fast-check arbitraries from the JSON schemas fastify validates the hub's requests with: values
 * the schema accepts (`valid`), and values it must refuse (`invalid`: exactly one definite
 * violation). The hub's ajv coerces types (`coerceTypes: 'array'`: "5" is an integer, "true" a
 * boolean, a one-item array a scalar), so a violation is chosen among what no coercion repairs:
 * a missing required key, an unknown key where none are allowed, a string too long or off its
 * pattern, an integer out of range or fractional, a value outside an enum, an object for a scalar.
 */

export interface Schema {
  type?: string | string[];
  enum?: readonly unknown[];
  properties?: Record<string, Schema>;
  required?: readonly string[];
  additionalProperties?: boolean;
  minLength?: number;
  maxLength?: number;
  pattern?: string;
  minimum?: number;
  maximum?: number;
  anyOf?: readonly Schema[];
  items?: Schema;
  maxItems?: number;
}

/**
 * Values that mean something to the hub, by property name (an address it can ban, a node name
 * from a small pool): pure schema strings would almost never reach past the parsers, and small
 * pools keep the state a long run builds (bans, nodes, bouncers) bounded. A hint must satisfy
 * the property's schema; it replaces schema generation for valid values only.
 */
export type Hints = Readonly<Record<string, fc.Arbitrary<unknown>>>;

const types = (s: Schema): string[] =>
  s.type === undefined ? [] : Array.isArray(s.type) ? s.type : [s.type];

/** Values `s` accepts. Strings stay short unless the schema asks for length. */
export function valid(s: Schema, hints: Hints = {}): fc.Arbitrary<unknown> {
  if (s.enum) return fc.constantFrom(...s.enum);
  if (s.anyOf) return fc.oneof(...s.anyOf.map((b) => valid(b, hints)));
  const t = types(s);
  if (t.length > 1) return fc.oneof(...t.map((one) => valid({ ...s, type: one }, hints)));
  switch (t[0]) {
    case 'string':
      if (s.pattern) return fc.stringMatching(new RegExp(s.pattern));
      return fc.string({ minLength: s.minLength ?? 0, maxLength: Math.min(s.maxLength ?? 40, 40) });
    case 'integer':
      return fc.oneof(
        fc.integer({ min: s.minimum ?? -1e9, max: s.maximum ?? 1e9 }),
        fc.constantFrom(...[s.minimum, s.maximum].filter((x): x is number => x !== undefined), 1),
      );
    case 'number':
      return fc.double({ min: s.minimum ?? -1e9, max: s.maximum ?? 1e9, noNaN: true });
    case 'boolean':
      return fc.boolean();
    case 'null':
      return fc.constant(null);
    case 'array':
      return fc.array(s.items ? valid(s.items, hints) : fc.jsonValue({ maxDepth: 1 }), {
        maxLength: Math.min(s.maxItems ?? 6, 6),
      });
    case 'object':
      return validObject(s, hints);
    default:
      return fc.jsonValue({ maxDepth: 2 });
  }
}

function validObject(s: Schema, hints: Hints): fc.Arbitrary<Record<string, unknown>> {
  const props = s.properties ?? {};
  const model: Record<string, fc.Arbitrary<unknown>> = {};
  for (const [k, p] of Object.entries(props)) model[k] = hints[k] ?? valid(p, hints);
  return fc.record(model, { requiredKeys: [...(s.required ?? [])] });
}

/**
 * Values `s` must refuse, or undefined when no definite violation exists. `textual`: only
 * violations a querystring can spell (no objects).
 */
export function invalid(s: Schema, hints: Hints = {}, textual = false): fc.Arbitrary<unknown> | undefined {
  const ways: fc.Arbitrary<unknown>[] = [];
  const t = types(s);
  const scalar = s.enum !== undefined || (t.length > 0 && !t.includes('object') && !t.includes('array'));
  const anyOfScalar = s.anyOf?.every((b) => !types(b).includes('object') && !types(b).includes('array'));
  // No coercion turns an object into a string, number or boolean.
  if ((scalar || anyOfScalar) && !textual) ways.push(fc.constant({ x: 1 }));
  if (s.enum) ways.push(fc.constant('not-in-the-enum'));
  else if (t.length === 1 && t[0] === 'string') {
    if (s.maxLength !== undefined) {
      // At most 30 over: a path parameter past 100 characters is refused by the router (414) first.
      ways.push(fc.integer({ min: s.maxLength + 1, max: s.maxLength + 30 }).map((n) => 'x'.repeat(n)));
    }
    if ((s.minLength ?? 0) > 0) ways.push(fc.constant(''));
    if (s.pattern) {
      const re = new RegExp(s.pattern);
      ways.push(
        fc
          .oneof(fc.constant('-x'), fc.constant('a b'), fc.string({ maxLength: 20 }))
          .filter((x) => !re.test(x)),
      );
    }
  } else if (t.length === 1 && t[0] === 'integer') {
    ways.push(fc.constant(1.5));
    if (s.minimum !== undefined) ways.push(fc.integer({ min: s.minimum - 1000, max: s.minimum - 1 }));
    if (s.maximum !== undefined) ways.push(fc.integer({ min: s.maximum + 1, max: s.maximum + 1000 }));
  } else if (t.length === 1 && t[0] === 'object') {
    ways.push(fc.constantFrom(7, 'text'));
    ways.push(...objectViolations(s, hints));
  } else if (t.includes('object')) {
    ways.push(...objectViolations(s, hints));
  }
  return ways.length === 0 ? undefined : fc.oneof(...ways);
}

/** A valid object with one property made invalid, one required key dropped, or one unknown key added. */
function objectViolations(s: Schema, hints: Hints): fc.Arbitrary<unknown>[] {
  const base = validObject(s, hints);
  const ways: fc.Arbitrary<unknown>[] = [];
  for (const key of s.required ?? []) {
    ways.push(
      base.map((o) => {
        const { [key]: _dropped, ...rest } = o;
        return rest;
      }),
    );
  }
  if (s.additionalProperties === false) {
    // A plain value: a `__proto__` or `constructor` key inside it is refused by the JSON parser
    // (E_HTTP) before the schema sees the unknown key.
    const plain = fc.oneof(fc.integer(), fc.string({ maxLength: 10 }), fc.boolean(), fc.constant(null));
    ways.push(fc.tuple(base, plain).map(([o, v]) => ({ ...o, unknownKey: v })));
  }

  for (const [key, p] of Object.entries(s.properties ?? {})) {
    const bad = invalid(p, hints);
    if (bad) ways.push(fc.tuple(base, bad).map(([o, v]) => ({ ...o, [key]: v })));
  }
  return ways;
}

/**
 * A querystring's values, which arrive as text: each value is spelled as the URL would carry it.
 * A repeated key becomes an array, which no scalar field accepts, so it is one more violation.
 */
export function queryPairs(
  s: Schema,
  hints: Hints,
  mode: 'valid' | 'invalid',
): fc.Arbitrary<Array<[string, string]>> {
  const props = s.properties ?? {};
  const spell = (v: unknown) => (typeof v === 'object' && v !== null ? undefined : String(v));
  const validPairs = (validObject(s, hints) as fc.Arbitrary<Record<string, unknown>>).map((o) =>
    Object.entries(o).map(([k, v]): [string, string] => [k, spell(v) ?? '']),
  );
  if (mode === 'valid') return validPairs;
  const ways: fc.Arbitrary<Array<[string, string]>>[] = [];
  for (const [key, p] of Object.entries(props)) {
    const bad = invalid(p, hints, true);
    if (bad) {
      ways.push(
        fc
          .tuple(validPairs, bad)
          .map(([pairs, v]) => [...pairs.filter(([k]) => k !== key), [key, String(v)]]),
      );
    }
    if (types(p).some((x) => x !== 'array' && x !== 'object')) {
      ways.push(
        fc
          .tuple(validPairs, hints[key] ?? valid(p, hints), hints[key] ?? valid(p, hints))
          .map(([pairs, a, b]) => [...pairs.filter(([k]) => k !== key), [key, String(a)], [key, String(b)]]),
      );
    }
  }
  if (s.additionalProperties === false) {
    ways.push(validPairs.map((pairs) => [...pairs, ['unknownKey', '1']]));
  }
  for (const key of s.required ?? []) ways.push(validPairs.map((pairs) => pairs.filter(([k]) => k !== key)));
  return fc.oneof(...ways);
}
