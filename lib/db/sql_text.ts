/**
 * Small lexical helpers over SQL text, following SQLite's own tokenizer
 * (tokenize.c) for the few things this layer needs: where the next real
 * statement starts, what its first keyword is, and whether the rest of a
 * string is only whitespace, comments and semicolons.
 *
 * Why this matters: node:sqlite's `prepare()` on SQL that holds no statement
 * (empty, whitespace, comments, lone `;`) returns a statement with a NULL
 * handle, and touching it crashes the process (SIGSEGV, measured on Deno
 * 2.9.6). So nothing here may ever call `prepare()` on text that
 * {@link skipBlank} reports as blank. SQLite treats a NUL character as the
 * end of the SQL text; so do these helpers.
 *
 * @module
 */

const TAB = 0x09;
const LF = 0x0a;
const FF = 0x0c;
const CR = 0x0d;
const SPACE = 0x20;
const SEMI = 0x3b;
const DASH = 0x2d;
const SLASH = 0x2f;
const STAR = 0x2a;
const BOM = 0xfeff;

/**
 * SQLite's whitespace: tab, newline, form feed, carriage return, space
 * (CC_SPACE) and a UTF-8 byte-order mark anywhere in the text (CC_BOM).
 */
export function isSqlSpace(c: number): boolean {
  return c === SPACE || c === TAB || c === LF || c === CR || c === FF || c === BOM;
}

/**
 * Returns the index of the first character at or after `pos` that is not
 * whitespace or a comment (semicolons are kept), or `sql.length` when only
 * such text (or a NUL) remains.
 */
export function skipSpaceAndComments(sql: string, pos: number): number {
  const n = sql.length;
  let i = pos;
  while (i < n) {
    const c = sql.charCodeAt(i);
    if (isSqlSpace(c)) {
      i++;
    } else if (c === DASH && sql.charCodeAt(i + 1) === DASH) {
      const nl = sql.indexOf("\n", i + 2);
      i = nl < 0 ? n : nl + 1;
    } else if (c === SLASH && sql.charCodeAt(i + 1) === STAR) {
      const end = sql.indexOf("*/", i + 2);
      i = end < 0 ? n : end + 2;
    } else if (c === 0) {
      return n; // SQLite stops reading at a NUL.
    } else {
      return i;
    }
  }
  return n;
}

/**
 * Returns the index where the next statement starts at or after `pos`,
 * skipping whitespace, comments and empty statements (`;`), or `sql.length`
 * when no statement remains. Only text at an index below `sql.length` may be
 * handed to `prepare()`.
 */
export function skipBlank(sql: string, pos: number): number {
  const n = sql.length;
  let i = skipSpaceAndComments(sql, pos);
  while (i < n && sql.charCodeAt(i) === SEMI) i = skipSpaceAndComments(sql, i + 1);
  return i;
}

/** True when `sql` holds no statement at all (see {@link skipBlank}). */
export function isBlankSql(sql: string): boolean {
  return skipBlank(sql, 0) >= sql.length;
}

function isIdentChar(c: number): boolean {
  return (c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a) || (c >= 0x30 && c <= 0x39) ||
    c === 0x5f || c === 0x24 || c >= 0x80;
}

/** A bare word or a quoted identifier at `pos`, with the index after it. */
export interface Word {
  /** The word's text; quotes removed and doubled quotes collapsed for quoted forms. */
  readonly text: string;
  /** Index just after the word. */
  readonly end: number;
  /** Whether the word was quoted ("x", `x`, [x]). */
  readonly quoted: boolean;
}

/** Reads an identifier or keyword (bare or quoted) starting exactly at `pos`. */
export function readWord(sql: string, pos: number): Word | undefined {
  const c = sql.charCodeAt(pos);
  if (c === 0x22 || c === 0x60) { // "x" or `x`
    const q = sql[pos]!;
    let text = "";
    let i = pos + 1;
    for (;;) {
      const j = sql.indexOf(q, i);
      if (j < 0) return undefined;
      text += sql.slice(i, j);
      if (sql[j + 1] === q) {
        text += q;
        i = j + 2;
      } else {
        return { text, end: j + 1, quoted: true };
      }
    }
  }
  if (c === 0x5b) { // [x]
    const j = sql.indexOf("]", pos + 1);
    if (j < 0) return undefined;
    return { text: sql.slice(pos + 1, j), end: j + 1, quoted: true };
  }
  if (!isIdentChar(c) || (c >= 0x30 && c <= 0x39)) return undefined;
  let i = pos + 1;
  while (i < sql.length && isIdentChar(sql.charCodeAt(i))) i++;
  return { text: sql.slice(pos, i), end: i, quoted: false };
}

/** The first keyword of the first statement in `sql`, upper-cased, or "" when there is none. */
export function leadingKeyword(sql: string): string {
  const i = skipBlank(sql, 0);
  const w = readWord(sql, i);
  return w === undefined || w.quoted ? "" : w.text.toUpperCase();
}

/**
 * Indices where statements start in `sql`: the first non-blank character and
 * the first non-blank character after every `;` that is outside string
 * literals, quoted identifiers and comments. (Semicolons inside a trigger
 * body are reported as starts too; callers use this only to look at leading
 * keywords, where that is harmless.)
 */
export function statementStarts(sql: string): number[] {
  const starts: number[] = [];
  const n = sql.length;
  let i = skipBlank(sql, 0);
  if (i < n) starts.push(i);
  while (i < n) {
    const c = sql.charCodeAt(i);
    if (c === 0x27 || c === 0x22 || c === 0x60) { // '...', "...", `...` (doubled quote escapes)
      const q = sql[i]!;
      let j = i + 1;
      for (;;) {
        const k = sql.indexOf(q, j);
        if (k < 0) return starts;
        if (sql[k + 1] === q) {
          j = k + 2;
        } else {
          i = k + 1;
          break;
        }
      }
    } else if (c === 0x5b) {
      const k = sql.indexOf("]", i + 1);
      if (k < 0) return starts;
      i = k + 1;
    } else if (c === DASH && sql.charCodeAt(i + 1) === DASH) {
      const nl = sql.indexOf("\n", i + 2);
      if (nl < 0) return starts;
      i = nl + 1;
    } else if (c === SLASH && sql.charCodeAt(i + 1) === STAR) {
      const end = sql.indexOf("*/", i + 2);
      if (end < 0) return starts;
      i = end + 2;
    } else if (c === 0) {
      return starts;
    } else if (c === SEMI) {
      i = skipBlank(sql, i);
      if (i < n) starts.push(i);
    } else {
      i++;
    }
  }
  return starts;
}

/**
 * Removes the " in <sql> at offset N" suffix that node:sqlite's `exec()`
 * appends to syntax errors, so messages equal SQLite's `sqlite3_errmsg()`
 * text as rqlite reports it (`near "blah": syntax error`).
 */
export function cleanSqliteMessage(message: string): string {
  const m = / at offset \d+$/.exec(message);
  if (m === null) return message;
  const head = message.slice(0, m.index);
  const k = head.indexOf(" in ");
  return k < 0 ? message : head.slice(0, k);
}
