/**
 * Splitting the editor's text into statements, so each gets its own result
 * (rqlite takes a JSON array of statements, one result per element).
 *
 * A `;` ends a statement unless it sits inside a string ('...'), a quoted
 * identifier ("...", `...`, [...]), a comment (-- or /* *\/), or the body of
 * a CREATE TRIGGER (between its BEGIN and the matching END; CASE...END nests
 * there too). Statements holding only whitespace and comments are dropped.
 * Pure: no DOM, so Deno unit tests import it directly.
 */

/**
 * The statements of `text`, trimmed, without their closing `;`.
 * @param {string} text
 * @returns {string[]}
 */
export function splitStatements(text) {
  /** @type {string[]} */
  const out = [];
  const n = text.length;
  let start = 0;
  let words = 0;
  let head = "";
  let depth = 0;
  let content = false;
  let i = 0;
  const finish = (end) => {
    if (content) out.push(text.slice(start, end).trim().replace(/;$/, "").trim());
    start = end;
    words = 0;
    head = "";
    depth = 0;
    content = false;
  };
  while (i < n) {
    const c = text[i];
    if (c === "-" && text[i + 1] === "-") {
      i = endOf(text.indexOf("\n", i), n, 1);
    } else if (c === "/" && text[i + 1] === "*") {
      i = endOf(text.indexOf("*/", i + 2), n, 2);
    } else if (c === "'" || c === '"' || c === "`") {
      i = skipQuoted(text, i, c);
      content = true;
    } else if (c === "[") {
      i = endOf(text.indexOf("]", i + 1), n, 1);
      content = true;
    } else if (isWordStart(c)) {
      let j = i + 1;
      while (j < n && isWordChar(text[j])) j++;
      const word = text.slice(i, j).toUpperCase();
      if (words < 3) head += ` ${word}`;
      words++;
      if (isTrigger(head)) {
        if (word === "BEGIN" || word === "CASE") depth++;
        else if (word === "END" && depth > 0) depth--;
      }
      content = true;
      i = j;
    } else if (c === ";" && depth === 0) {
      finish(i + 1);
      i++;
    } else {
      if (!/\s/.test(c)) content = true;
      i++;
    }
  }
  finish(n);
  return out;
}

/** Index after a closing token found at `at` (of `len` chars), or `n` when unclosed. */
function endOf(at, n, len) {
  return at < 0 ? n : at + len;
}

/** Index after the quote closing the one at `i` (a doubled quote is an escaped one). */
function skipQuoted(text, i, quote) {
  let j = i + 1;
  for (;;) {
    const k = text.indexOf(quote, j);
    if (k < 0) return text.length;
    if (text[k + 1] !== quote) return k + 1;
    j = k + 2;
  }
}

function isWordStart(c) {
  return /[A-Za-z_]/.test(c);
}

function isWordChar(c) {
  return /[A-Za-z0-9_$]/.test(c);
}

function isTrigger(head) {
  return /^ CREATE( TEMP| TEMPORARY)? TRIGGER\b/.test(head);
}
