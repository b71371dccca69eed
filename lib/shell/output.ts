/**
 * Where the shell's output goes. Results and messages go to the current
 * {@link Output}: the terminal, or a file after `.output FILE`. Errors
 * (`ERR! ...`) and progress always go to the terminal, so a redirected
 * file holds only results.
 *
 * Writes are synchronous (`writeSync` until every byte is out) so output
 * and the prompt that readline prints afterwards never interleave.
 *
 * @module
 */

const encoder = new TextEncoder();

/** Writes all of `text` to `w` synchronously. */
export function writeAllSync(w: { writeSync(p: Uint8Array): number }, text: string): void {
  let bytes = encoder.encode(text);
  // Bounded: each round writes at least one byte or throws.
  while (bytes.length > 0) {
    const n = w.writeSync(bytes);
    if (n <= 0) throw new Error("write made no progress");
    bytes = bytes.subarray(n);
  }
}

/** A destination for results. */
export interface Output {
  /** "stdout" or the file's path (for `.show`). */
  readonly name: string;
  write(text: string): void;
  close(): void;
}

/** The process's stdout. */
export const stdoutOutput: Output = {
  name: "stdout",
  write: (text) => writeAllSync(Deno.stdout, text),
  close: () => {},
};

/** A file opened for `.output FILE` (created or truncated). */
export function fileOutput(path: string): Output {
  const file = Deno.openSync(path, { write: true, create: true, truncate: true });
  return {
    name: path,
    write: (text) => writeAllSync(file, text),
    close: () => file.close(),
  };
}

/** Writes to stderr (errors, notices); never redirected. */
export function writeError(text: string): void {
  writeAllSync(Deno.stderr, text);
}
