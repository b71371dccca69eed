/**
 * Test certificates made with `openssl` during the test, in a temp dir: a
 * CA, certificates it signs (servers/nodes: SAN `IP:127.0.0.1` and
 * `DNS:localhost` by default; clients: any common name), and self-signed
 * "rogue" certificates that look right but no CA vouches for. Keys are
 * ECDSA P-256 (fast to make). Every openssl call is time-bounded.
 *
 * @module
 */

import { runBounded } from "./run_bounded.ts";

/** Paths of a certificate and its key. */
export interface CertFiles {
  readonly cert: string;
  readonly key: string;
}

/** Options of {@link TestPki.issue} and {@link TestPki.selfSigned}. */
export interface CertOptions {
  /** Subject common name (default: the file name). */
  readonly cn?: string;
  /** subjectAltName entries (default `IP:127.0.0.1`, `DNS:localhost`). */
  readonly san?: readonly string[];
}

const DEFAULT_SAN = ["IP:127.0.0.1", "DNS:localhost"];
const OPENSSL_TIMEOUT_MS = 20_000;

/** A throwaway certificate authority under a temp dir (remove it with {@link close}). */
export class TestPki {
  private constructor(readonly dir: string, readonly ca: CertFiles) {}

  /** Path of the CA certificate (what `-http-ca-cert` / `-node-ca-cert` / `curl --cacert` take). */
  get caCert(): string {
    return this.ca.cert;
  }

  /** Makes a temp dir and a CA in it. */
  static async create(): Promise<TestPki> {
    const dir = await Deno.makeTempDir({ prefix: "raftlite-certs-" });
    const ca = { cert: `${dir}/ca.pem`, key: `${dir}/ca.key` };
    try {
      await openssl([
        "req",
        "-x509",
        ...newKey(ca.key),
        "-out",
        ca.cert,
        "-days",
        "2",
        "-subj",
        "/CN=raftlite test CA",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
      ]);
    } catch (err) {
      await Deno.remove(dir, { recursive: true }).catch(() => {});
      throw err;
    }
    return new TestPki(dir, ca);
  }

  /** A certificate signed by the CA, good for both server and client use. */
  async issue(name: string, options: CertOptions = {}): Promise<CertFiles> {
    const out = this.#files(name);
    const csr = `${this.dir}/${name}.csr`;
    const ext = `${this.dir}/${name}.ext`;
    await openssl([
      "req",
      "-new",
      ...newKey(out.key),
      "-out",
      csr,
      "-subj",
      subject(name, options),
    ]);
    await Deno.writeTextFile(ext, leafExtensions(options).join("\n") + "\n");
    await openssl([
      "x509",
      "-req",
      "-in",
      csr,
      "-CA",
      this.ca.cert,
      "-CAkey",
      this.ca.key,
      "-CAcreateserial",
      "-out",
      out.cert,
      "-days",
      "2",
      "-extfile",
      ext,
    ]);
    return out;
  }

  /** A self-signed certificate with the same shape as {@link issue}'s, unknown to the CA. */
  async selfSigned(name: string, options: CertOptions = {}): Promise<CertFiles> {
    const out = this.#files(name);
    const addext = leafExtensions(options).flatMap((e) => ["-addext", e]);
    await openssl([
      "req",
      "-x509",
      ...newKey(out.key),
      "-out",
      out.cert,
      "-days",
      "2",
      "-subj",
      subject(name, options),
      ...addext,
    ]);
    return out;
  }

  /** Removes every file. */
  async close(): Promise<void> {
    await Deno.remove(this.dir, { recursive: true }).catch(() => {});
  }

  #files(name: string): CertFiles {
    if (!/^[\w-]+$/.test(name)) throw new Error(`certificate name "${name}": use [A-Za-z0-9_-]`);
    return { cert: `${this.dir}/${name}.pem`, key: `${this.dir}/${name}.key` };
  }
}

/** Creates a PKI, runs `body`, and removes it whatever happens. */
export async function withPki<T>(body: (pki: TestPki) => Promise<T>): Promise<T> {
  const pki = await TestPki.create();
  try {
    return await body(pki);
  } finally {
    await pki.close();
  }
}

function newKey(keyPath: string): string[] {
  return [
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:prime256v1",
    "-nodes",
    "-keyout",
    keyPath,
  ];
}

function subject(name: string, options: CertOptions): string {
  const cn = options.cn ?? name;
  if (cn.includes("/")) throw new Error(`common name "${cn}" must not contain "/"`);
  return `/CN=${cn}`;
}

function leafExtensions(options: CertOptions): string[] {
  const san = options.san ?? DEFAULT_SAN;
  return [
    "basicConstraints=critical,CA:FALSE",
    "keyUsage=critical,digitalSignature,keyEncipherment",
    "extendedKeyUsage=serverAuth,clientAuth",
    ...(san.length === 0 ? [] : [`subjectAltName=${san.join(",")}`]),
  ];
}

async function openssl(args: string[]): Promise<void> {
  const out = await runBounded("openssl", args, { timeoutMs: OPENSSL_TIMEOUT_MS });
  if (out.code !== 0) {
    throw new Error(`openssl ${args.slice(0, 2).join(" ")} failed (${out.code}): ${out.stderr}`);
  }
}
