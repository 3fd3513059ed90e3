/**
 * The API's JSON body parser. Fastify's own refuses a body with a `__proto__` key (or
 * `constructor.prototype`) with the same "Body is not valid JSON" as a syntax error, which sent
 * operators looking for a typo that was not there. This one says which it was.
 */

/** A 400 the API's error handler sends as `{ error, code: "E_HTTP" }`. */
function badBody(message: string): Error & { statusCode: number } {
  return Object.assign(new Error(message), { statusCode: 400 });
}

export function parseJsonBody(text: string): unknown {
  if (text.length === 0) throw badBody('the body is empty but its content-type is application/json');
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    // V8's message quotes the body; only the position is repeated back.
    const at = /position (\d+)/.exec((err as Error).message)?.[1];
    throw badBody(`the body is not valid JSON${at === undefined ? '' : ` (at character ${at})`}`);
  }
  // JSON.parse makes `__proto__` an own key, harmless until a spread or merge turns it into a
  // prototype: refused, as fastify does. The text test keeps the walk off ordinary bodies.
  if ((text.includes('__proto__') || text.includes('prototype')) && pollutingKey(value))
    throw badBody('the body has a "__proto__" or "constructor.prototype" key, which is refused');
  return value;
}

/** Whether any object in `root` has a `__proto__` key, or a `constructor` object with `prototype`. */
function pollutingKey(root: unknown): boolean {
  const stack: unknown[] = [root];
  while (stack.length > 0) {
    const v = stack.pop();
    if (typeof v !== 'object' || v === null) continue;
    if (Array.isArray(v)) {
      for (const x of v) stack.push(x);
      continue;
    }
    if (Object.hasOwn(v, '__proto__')) return true;
    const ctor = (v as Record<string, unknown>).constructor;
    if (
      Object.hasOwn(v, 'constructor') &&
      typeof ctor === 'object' &&
      ctor !== null &&
      Object.hasOwn(ctor, 'prototype')
    )
      return true;
    for (const x of Object.values(v)) stack.push(x);
  }
  return false;
}
