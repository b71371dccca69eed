/**
 * A SQLite tokenizer following `sqlite3GetToken` (src/tokenize.c): the same
 * token boundaries SQLite itself uses, so a rewrite at the token level can
 * never touch text inside a string, a quoted identifier, a blob literal or a
 * comment. Tokens carry offsets into the source; nothing is copied.
 *
 * Recognised: whitespace (space, tab, LF, FF, CR), `--` and `/* *\/`
 * comments (an unterminated block comment runs to the end, as in SQLite),
 * `'strings'` with `''` escapes, identifiers bare or quoted with `"..."`,
 * `` `...` `` (doubled delimiter escapes) or `[...]`, blob literals `x'..'`,
 * numbers (decimal with `_` digit separators, fractions, exponents, `0x` hex),
 * parameters (`?`, `?NNN`, `:name`, `@name`, `$name`, `#name`) and operators.
 * A byte-order mark at a token start is space and a NUL ends the text (the
 * rest is one trivia token), as in SQLite.
 * What SQLite rejects (an unterminated string, `!` alone, a number running
 * into letters, an odd blob) becomes an `illegal` token; SQLite reports it as
 * `unrecognized token: "<text>"`.
 *
 * @module
 */

/** Token classes. `ws` and `comment` are trivia. */
export type TokenKind =
  | "ws"
  | "comment"
  | "ident"
  | "quoted"
  | "string"
  | "blob"
  | "number"
  | "param"
  | "punct"
  | "illegal";

/** A token: `kind` and the half-open source range `[start, end)`. */
export interface Token {
  readonly kind: TokenKind;
  readonly start: number;
  readonly end: number;
}

/** SQLite's `IdChar`: letters, digits, `_`, `$` and every non-ASCII code unit. */
export function isIdChar(c: number): boolean {
  return (c >= 97 && c <= 122) || (c >= 65 && c <= 90) || (c >= 48 && c <= 57) || c === 95 ||
    c === 36 || c >= 0x80;
}

/** First character of a bare identifier: letters, `_`, non-ASCII. */
function isIdStart(c: number): boolean {
  return (c >= 97 && c <= 122) || (c >= 65 && c <= 90) || c === 95 || c >= 0x80;
}

function isDigit(c: number): boolean {
  return c >= 48 && c <= 57;
}

function isHexDigit(c: number): boolean {
  return isDigit(c) || (c >= 65 && c <= 70) || (c >= 97 && c <= 102);
}

function isSpace(c: number): boolean {
  return c === 32 || c === 9 || c === 10 || c === 12 || c === 13;
}

/** Length of a quoted token starting with `delim` at `i` (doubled delimiter escapes); -1 if unterminated. */
function quotedLength(sql: string, i: number, delim: number): number {
  let j = i + 1;
  for (;;) {
    const k = sql.indexOf(String.fromCharCode(delim), j);
    if (k < 0) return -1;
    if (sql.charCodeAt(k + 1) === delim) {
      j = k + 2;
      continue;
    }
    return k + 1 - i;
  }
}

/** The kind and length of the token at `i` (requires `i < sql.length`). */
function scan(sql: string, i: number): [TokenKind, number] {
  const c = sql.charCodeAt(i);
  const next = sql.charCodeAt(i + 1);
  if (c === 0) return ["comment", sql.length - i]; // SQLite stops reading at NUL: the rest is ignored
  if (c === 0xfeff) return ["ws", 1]; // a byte-order mark at a token start is space (CC_BOM)
  if (isSpace(c)) {
    let j = i + 1;
    while (j < sql.length && isSpace(sql.charCodeAt(j))) j++;
    return ["ws", j - i];
  }
  switch (c) {
    case 45: // -
      if (next === 45) {
        const nl = sql.indexOf("\n", i + 2);
        return ["comment", (nl < 0 ? sql.length : nl) - i];
      }
      if (next === 62) return ["punct", sql.charCodeAt(i + 2) === 62 ? 3 : 2]; // -> ->>
      return ["punct", 1];
    case 47: // /
      if (next === 42) {
        const close = sql.indexOf("*/", i + 2);
        return ["comment", (close < 0 ? sql.length : close + 2) - i];
      }
      return ["punct", 1];
    case 40: // (
    case 41: // )
    case 59: // ;
    case 43: // +
    case 42: // *
    case 37: // %
    case 44: // ,
    case 38: // &
    case 126: // ~
      return ["punct", 1];
    case 61: // = ==
      return ["punct", next === 61 ? 2 : 1];
    case 60: // < <= <> <<
      return ["punct", next === 61 || next === 62 || next === 60 ? 2 : 1];
    case 62: // > >= >>
      return ["punct", next === 61 || next === 62 ? 2 : 1];
    case 33: // !=
      return next === 61 ? ["punct", 2] : ["illegal", 1];
    case 124: // | ||
      return ["punct", next === 124 ? 2 : 1];
    case 39: { // 'string'
      const n = quotedLength(sql, i, 39);
      return n < 0 ? ["illegal", sql.length - i] : ["string", n];
    }
    case 34: // "identifier"
    case 96: { // `identifier`
      const n = quotedLength(sql, i, c);
      return n < 0 ? ["illegal", sql.length - i] : ["quoted", n];
    }
    case 91: { // [identifier]
      const k = sql.indexOf("]", i + 1);
      return k < 0 ? ["illegal", sql.length - i] : ["quoted", k + 1 - i];
    }
    case 46: // . or .5
      return isDigit(next) ? scanNumber(sql, i) : ["punct", 1];
    case 63: { // ? ?NNN
      let j = i + 1;
      while (isDigit(sql.charCodeAt(j))) j++;
      return ["param", j - i];
    }
    case 36: // $name
    case 64: // @name
    case 58: // :name
    case 35: // #name
      return scanVariable(sql, i);
    case 120: // x'..'
    case 88: // X'..'
      if (next === 39) {
        let j = i + 2;
        while (isHexDigit(sql.charCodeAt(j))) j++;
        const digits = j - i - 2;
        if (sql.charCodeAt(j) === 39 && digits % 2 === 0) return ["blob", j + 1 - i];
        // SQLite: consume up to the closing quote (or the end) as one illegal token.
        while (j < sql.length && sql.charCodeAt(j) !== 39) j++;
        return ["illegal", Math.min(j + 1, sql.length) - i];
      }
      break;
  }
  if (isDigit(c)) return scanNumber(sql, i);
  if (isIdStart(c)) {
    let j = i + 1;
    while (j < sql.length && isIdChar(sql.charCodeAt(j))) j++;
    return ["ident", j - i];
  }
  return ["illegal", 1];
}

/** A run of digits and `_` separators from `j` (SQLite takes every `_` here and validates later). */
function digitsEnd(sql: string, j: number, hex: boolean): number {
  const ok = hex ? isHexDigit : isDigit;
  for (;;) {
    const c = sql.charCodeAt(j);
    if (ok(c) || c === 95) j++;
    else return j;
  }
}

function scanNumber(sql: string, i: number): [TokenKind, number] {
  let j = i;
  if (
    sql.charCodeAt(i) === 48 && (sql.charCodeAt(i + 1) | 0x20) === 120 &&
    isHexDigit(sql.charCodeAt(i + 2))
  ) {
    j = digitsEnd(sql, i + 2, true);
  } else {
    j = digitsEnd(sql, j, false);
    if (sql.charCodeAt(j) === 46) j = digitsEnd(sql, j + 1, false);
    const e = sql.charCodeAt(j);
    if (e === 101 || e === 69) {
      const s = sql.charCodeAt(j + 1);
      if (isDigit(s)) j = digitsEnd(sql, j + 1, false);
      else if ((s === 43 || s === 45) && isDigit(sql.charCodeAt(j + 2))) {
        j = digitsEnd(sql, j + 2, false);
      }
    }
  }
  // A number running straight into identifier characters is one illegal token.
  if (j < sql.length && isIdChar(sql.charCodeAt(j))) {
    while (j < sql.length && isIdChar(sql.charCodeAt(j))) j++;
    return ["illegal", j - i];
  }
  return ["number", j - i];
}

/** `$name`, `@name`, `:name`, `#name`; `$` also takes TCL `::` and a `(...)` suffix. */
function scanVariable(sql: string, i: number): [TokenKind, number] {
  const tcl = sql.charCodeAt(i) === 36;
  let j = i + 1;
  let n = 0;
  while (j < sql.length) {
    const c = sql.charCodeAt(j);
    if (isIdChar(c)) {
      j++;
      n++;
    } else if (tcl && c === 40 && n > 0) {
      // $name(...) — up to the closing parenthesis, no whitespace.
      let k = j + 1;
      while (k < sql.length && sql.charCodeAt(k) !== 41 && !isSpace(sql.charCodeAt(k))) k++;
      if (sql.charCodeAt(k) === 41) return ["param", k + 1 - i];
      return ["illegal", k - i];
    } else if (tcl && c === 58 && sql.charCodeAt(j + 1) === 58) {
      j += 2;
    } else {
      break;
    }
  }
  return n === 0 ? ["illegal", j - i] : ["param", j - i];
}

/** Splits `sql` into tokens covering every character, trivia included. */
export function tokenize(sql: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < sql.length) {
    const [kind, length] = scan(sql, i);
    tokens.push({ kind, start: i, end: i + length });
    i += length;
  }
  return tokens;
}

/** The content of a quoted identifier or string token, delimiters removed and escapes undone. */
export function unquote(text: string): string {
  const open = text[0];
  if (open === "[") return text.slice(1, -1);
  if (open === '"' || open === "'" || open === "`") {
    return text.slice(1, -1).replaceAll(open + open, open);
  }
  return text;
}
