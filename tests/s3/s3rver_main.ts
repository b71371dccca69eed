/**
 * A real S3-compatible server for the backup tests: the npm package
 * s3rver (3.7.1, unmodified) on 127.0.0.1 with a random port. Run by
 * tests/util/s3_server.ts as
 * `deno run -A --config tests/s3/deno.json --lock tests/s3/deno.lock --frozen tests/s3/s3rver_main.ts <dir> <bucket>...`.
 *
 * Its own config because s3rver is CommonJS with many dependencies and
 * needs a node_modules directory (`nodeModulesDir: "auto"`), which the
 * project itself does not want. Prints `S3RVER_PORT <port>` on one stdout
 * line once it accepts connections, then runs until killed. s3rver checks
 * SigV4 signatures with access key `S3RVER` and secret `S3RVER`.
 *
 * @module
 */

/** The part of s3rver's API used here. */
interface S3rverInstance {
  run(): Promise<{ port: number }>;
}
type S3rverClass = new (opts: Record<string, unknown>) => S3rverInstance;

// A computed specifier, resolved through tests/s3/deno.json's import map at
// run time: the root `deno check` (which has its own frozen lock without
// s3rver) then neither resolves nor downloads the package.
const specifier = "s3rver";
const S3rver: S3rverClass = (await import(specifier)).default;

const [dir, ...buckets] = Deno.args;
if (!dir) {
  console.error("usage: s3rver_main.ts <dir> <bucket>...");
  Deno.exit(2);
}

const server = new S3rver({
  port: 0,
  address: "127.0.0.1",
  silent: true,
  directory: dir,
  configureBuckets: buckets.map((name) => ({ name })),
});
const addr = await server.run();
console.log(`S3RVER_PORT ${addr.port}`);
