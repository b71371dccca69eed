/**
 * JSON from a node, read without losing integers: rqlite writes 64-bit
 * integers as exact digits, and `JSON.parse` would round anything beyond
 * 2^53. The reviver sees each number's source text (V8's JSON.parse source
 * text access) and keeps unsafe integers as `bigint`.
 *
 * @module
 */

type Reviver = (
  this: unknown,
  key: string,
  value: unknown,
  context?: { source?: string },
) => unknown;

const keepBigInts: Reviver = (_key, value, context) => {
  if (
    typeof value === "number" && !Number.isSafeInteger(value) && context?.source !== undefined &&
    /^-?\d+$/.test(context.source)
  ) {
    return BigInt(context.source);
  }
  return value;
};

/** Parses JSON text; integers beyond 2^53 become `bigint`. Throws SyntaxError on bad JSON. */
export function parseJsonExact(text: string): unknown {
  return JSON.parse(text, keepBigInts as (key: string, value: unknown) => unknown);
}
