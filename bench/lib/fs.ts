/** File-system helpers for benches. */

/** Total bytes of every file under `dir`, recursively. */
export async function dirBytes(dir: string): Promise<number> {
  let total = 0;
  for await (const e of Deno.readDir(dir)) {
    const path = `${dir}/${e.name}`;
    total += e.isDirectory ? await dirBytes(path) : (await Deno.lstat(path)).size;
  }
  return total;
}
