/**
 * An exact JSON parser for request bodies. `JSON.parse` turns every number
 * into a float64, which loses integers beyond 2^53 and the difference between
 * `1` (INTEGER) and `1.0` (REAL) that rqlite keeps; its reviver can see the
 * source text but costs about 20x the parse time. This parser keeps number
 * literals as their source text ({@link JsonNumber}) and accepts exactly the
 * JSON Go's `encoding/json` accepts: RFC 8259, whitespace of space/tab/LF/CR
 * only, nothing after the value, nesting at most 10000 deep (Go's
 * `maxNestingDepth`), and Go's treatment of lone surrogate escapes (each
 * becomes U+FFFD). It is iterative, so deep input cannot overflow the stack.
 *
 * @module
 */

/** A JSON number kept as its exact source text, e.g. `9223372036854775807` or `1.0`. */
export class JsonNumber {
  constructor(readonly raw: string) {}
}

/** A JSON object; keys in first-seen order, a repeated key keeps its last value (as Go's map). */
export class JsonObject {
  constructor(readonly entries: Map<string, JsonValue>) {}
}

/** A parsed JSON value. */
export type JsonValue = null | boolean | string | JsonNumber | JsonObject | JsonValue[];

/** Invalid JSON; `offset` is where parsing stopped. */
export class JsonSyntaxError extends Error {
  constructor(message: string, readonly offset: number) {
    super(`${message} at offset ${offset}`);
    this.name = "JsonSyntaxError";
  }
}

/** Go's `encoding/json` nesting limit. */
export const JSON_MAX_DEPTH = 10_000;

type Frame =
  | { readonly kind: "array"; readonly items: JsonValue[] }
  | { readonly kind: "object"; readonly entries: Map<string, JsonValue>; key: string };

const ESCAPES: Readonly<Record<string, string>> = {
  '"': '"',
  "\\": "\\",
  "/": "/",
  b: "\b",
  f: "\f",
  n: "\n",
  r: "\r",
  t: "\t",
};

/** Parses `text` as one JSON value. Throws {@link JsonSyntaxError}. */
export function parseJsonExact(text: string, maxDepth: number = JSON_MAX_DEPTH): JsonValue {
  let i = 0;
  const n = text.length;
  const stack: Frame[] = [];

  const fail = (message: string): never => {
    throw new JsonSyntaxError(message, i);
  };
  const skipWs = () => {
    while (i < n) {
      const c = text.charCodeAt(i);
      if (c !== 32 && c !== 9 && c !== 10 && c !== 13) return;
      i++;
    }
  };
  const hex4 = (at: number): number => {
    if (at + 4 > n) return -1;
    let v = 0;
    for (let k = at; k < at + 4; k++) {
      const c = text.charCodeAt(k);
      let d: number;
      if (c >= 48 && c <= 57) d = c - 48;
      else if (c >= 65 && c <= 70) d = c - 55;
      else if (c >= 97 && c <= 102) d = c - 87;
      else return -1;
      v = v * 16 + d;
    }
    return v;
  };
  const slowString = (start: number): string => {
    // Escapes present: decode char by char (Go rules for surrogates).
    let out = "";
    let j = start;
    for (;;) {
      if (j >= n) {
        i = j;
        return fail("unterminated string");
      }
      const c = text.charCodeAt(j);
      if (c === 34) {
        i = j + 1;
        return out;
      }
      if (c < 0x20) {
        i = j;
        return fail("control character in string");
      }
      if (c !== 92) {
        out += text[j];
        j++;
        continue;
      }
      const e = text[j + 1];
      if (e === "u") {
        const u = hex4(j + 2);
        if (u < 0) {
          i = j;
          return fail("invalid \\u escape");
        }
        j += 6;
        if (u >= 0xd800 && u < 0xdc00 && text[j] === "\\" && text[j + 1] === "u") {
          const lo = hex4(j + 2);
          if (lo >= 0xdc00 && lo < 0xe000) {
            out += String.fromCharCode(u, lo);
            j += 6;
            continue;
          }
        }
        out += u >= 0xd800 && u < 0xe000 ? "\ufffd" : String.fromCharCode(u);
        continue;
      }
      const mapped = e === undefined ? undefined : ESCAPES[e];
      if (mapped === undefined) {
        i = j;
        return fail("invalid escape");
      }
      out += mapped;
      j += 2;
    }
  };
  const parseString = (): string => {
    // At the opening quote. Fast path: no escapes.
    const start = i + 1;
    for (let j = start; j < n; j++) {
      const c = text.charCodeAt(j);
      if (c === 34) {
        i = j + 1;
        return text.slice(start, j);
      }
      if (c === 92) return slowString(start);
      if (c < 0x20) {
        i = j;
        return fail("control character in string");
      }
    }
    i = n;
    return fail("unterminated string");
  };
  const digits = (): number => {
    const from = i;
    while (i < n) {
      const c = text.charCodeAt(i);
      if (c < 48 || c > 57) break;
      i++;
    }
    return i - from;
  };
  const parseNumber = (): JsonNumber => {
    const start = i;
    if (text.charCodeAt(i) === 45) i++;
    const c = text.charCodeAt(i);
    if (c === 48) i++;
    else if (c >= 49 && c <= 57) digits();
    else fail("invalid number");
    if (text.charCodeAt(i) === 46) {
      i++;
      if (digits() === 0) fail("invalid number");
    }
    const e = text.charCodeAt(i);
    if (e === 101 || e === 69) {
      i++;
      const s = text.charCodeAt(i);
      if (s === 43 || s === 45) i++;
      if (digits() === 0) fail("invalid number");
    }
    return new JsonNumber(text.slice(start, i));
  };
  const literal = (word: string, value: JsonValue): JsonValue => {
    if (!text.startsWith(word, i)) fail("invalid literal");
    i += word.length;
    return value;
  };
  const parseKey = (): string => {
    skipWs();
    if (text.charCodeAt(i) !== 34) fail("expected object key");
    const key = parseString();
    skipWs();
    if (text.charCodeAt(i) !== 58) fail("expected ':'");
    i++;
    return key;
  };
  const push = (frame: Frame) => {
    if (stack.length >= maxDepth) fail("exceeded max depth");
    stack.push(frame);
  };

  for (;;) {
    // Parse one value starting at i.
    skipWs();
    if (i >= n) fail("unexpected end of JSON input");
    const c = text.charCodeAt(i);
    let value: JsonValue;
    if (c === 91 /* [ */) {
      i++;
      skipWs();
      if (text.charCodeAt(i) === 93) {
        i++;
        if (stack.length >= maxDepth) fail("exceeded max depth");
        value = [];
      } else {
        push({ kind: "array", items: [] });
        continue;
      }
    } else if (c === 123 /* { */) {
      i++;
      skipWs();
      if (text.charCodeAt(i) === 125) {
        i++;
        if (stack.length >= maxDepth) fail("exceeded max depth");
        value = new JsonObject(new Map());
      } else {
        push({ kind: "object", entries: new Map(), key: "" });
        const frame = stack[stack.length - 1] as Frame & { kind: "object" };
        frame.key = parseKey();
        continue;
      }
    } else if (c === 34) {
      value = parseString();
    } else if (c === 116) {
      value = literal("true", true);
    } else if (c === 102) {
      value = literal("false", false);
    } else if (c === 110) {
      value = literal("null", null);
    } else {
      value = parseNumber();
    }
    // Attach the value to its container; close containers that end here.
    for (;;) {
      const top = stack[stack.length - 1];
      if (top === undefined) {
        skipWs();
        if (i !== n) fail("invalid character after top-level value");
        return value;
      }
      if (top.kind === "array") top.items.push(value);
      else top.entries.set(top.key, value);
      skipWs();
      const d = text.charCodeAt(i);
      if (d === 44 /* , */) {
        i++;
        if (top.kind === "object") top.key = parseKey();
        break;
      }
      if (top.kind === "array" && d === 93) {
        i++;
        stack.pop();
        value = top.items;
        continue;
      }
      if (top.kind === "object" && d === 125) {
        i++;
        stack.pop();
        value = new JsonObject(top.entries);
        continue;
      }
      fail(i >= n ? "unexpected end of JSON input" : "expected ',' or end of container");
    }
  }
}
