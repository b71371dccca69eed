/**
 * TLS settings from rqlited's flags (rqlite-api.md §8, §10): which
 * combinations make sense, and the PEM files read and checked once at start
 * so that a wrong path, a file that is not PEM, or a key that does not
 * belong to its certificate stops the node with `fatal: ...` instead of
 * failing every handshake later.
 *
 * Rules: `-x-cert` and `-x-key` come together; `-http-verify-client` needs
 * HTTPS and `-http-ca-cert`; `-node-verify-client` needs internode TLS and
 * `-node-ca-cert` (client certificates checked against the system roots
 * would admit anyone with a public certificate); `-x-verify-common-name`
 * needs `-x-verify-client`; the other `-node-*` options need internode TLS;
 * `-node-no-verify` and `-node-verify-server-name` contradict each other.
 *
 * @module
 */

import { createPrivateKey, X509Certificate } from "node:crypto";
import { FlagError } from "../config/flags.ts";
import type { HttpTlsConfig } from "../http/listen.ts";
import type { NodeTlsConfig } from "../transport/tls.ts";

/** Reads a flag's value ("" when unset). */
export type FlagGetter = (name: string) => string;

/** HTTPS and the CA used to trust other nodes' HTTPS APIs. */
export interface HttpTlsSettings {
  /** Undefined: plain HTTP. */
  readonly tls?: HttpTlsConfig;
  /** `-http-ca-cert` (PEM), also when HTTP is plain: trust for other nodes' HTTPS APIs. */
  readonly caCert?: string;
}

/** `-http-cert`, `-http-key`, `-http-ca-cert`, `-http-verify-client`, `-http-verify-common-name`. */
export function httpTlsFromFlags(get: FlagGetter): HttpTlsSettings {
  const pair = certKeyPair(get, "http");
  const verifyClient = get("http-verify-client") === "true";
  const commonName = get("http-verify-common-name");
  const caPath = get("http-ca-cert");
  if (verifyClient && pair === undefined) {
    throw new FlagError("-http-verify-client requires HTTPS: pass -http-cert and -http-key");
  }
  if (verifyClient && caPath === "") {
    throw new FlagError(
      "-http-verify-client requires -http-ca-cert (the CA that signs client certificates)",
    );
  }
  if (commonName !== "" && !verifyClient) {
    throw new FlagError("-http-verify-common-name requires -http-verify-client");
  }
  const caCert = caPath === "" ? undefined : readCertificate("http-ca-cert", caPath);
  if (pair === undefined) return caCert === undefined ? {} : { caCert };
  const tls: HttpTlsConfig = {
    ...pair,
    ...(caCert === undefined ? {} : { caCert }),
    verifyClient,
    ...(commonName === "" ? {} : { commonName }),
  };
  return { tls, ...(caCert === undefined ? {} : { caCert }) };
}

/** The `-node-*` TLS flags; undefined when internode traffic stays plain TCP. */
export function nodeTlsFromFlags(get: FlagGetter): NodeTlsConfig | undefined {
  const pair = certKeyPair(get, "node");
  const caPath = get("node-ca-cert");
  const noVerify = get("node-no-verify") === "true";
  const verifyClient = get("node-verify-client") === "true";
  const serverName = get("node-verify-server-name");
  const commonName = get("node-verify-common-name");
  if (pair === undefined) {
    const given = [
      ["node-ca-cert", caPath !== ""],
      ["node-no-verify", noVerify],
      ["node-verify-client", verifyClient],
      ["node-verify-server-name", serverName !== ""],
      ["node-verify-common-name", commonName !== ""],
    ].find(([, set]) => set);
    if (given !== undefined) {
      throw new FlagError(
        `-${given[0]} requires internode TLS: pass -node-cert and -node-key`,
      );
    }
    return undefined;
  }
  if (verifyClient && caPath === "") {
    throw new FlagError(
      "-node-verify-client requires -node-ca-cert (the CA that signs the nodes' certificates)",
    );
  }
  if (commonName !== "" && !verifyClient) {
    throw new FlagError("-node-verify-common-name requires -node-verify-client");
  }
  if (noVerify && serverName !== "") {
    throw new FlagError(
      "-node-no-verify and -node-verify-server-name contradict each other: pass one",
    );
  }
  return {
    ...pair,
    ...(caPath === "" ? {} : { caCert: readCertificate("node-ca-cert", caPath) }),
    verifyClient,
    noVerify,
    ...(serverName === "" ? {} : { serverName }),
    ...(commonName === "" ? {} : { commonName }),
  };
}

/** `-<prefix>-cert` and `-<prefix>-key` read and checked, or undefined when neither is given. */
function certKeyPair(
  get: FlagGetter,
  prefix: "http" | "node",
): { cert: string; key: string } | undefined {
  const certPath = get(`${prefix}-cert`);
  const keyPath = get(`${prefix}-key`);
  if (certPath === "" && keyPath === "") return undefined;
  if (certPath === "" || keyPath === "") {
    throw new FlagError(`-${prefix}-cert and -${prefix}-key must be given together`);
  }
  const cert = readCertificate(`${prefix}-cert`, certPath);
  const key = readPem(`${prefix}-key`, keyPath);
  let matches: boolean;
  try {
    matches = new X509Certificate(cert).checkPrivateKey(createPrivateKey(key));
  } catch (err) {
    throw new FlagError(
      `-${prefix}-key "${keyPath}" is not a usable private key: ${errorText(err)}`,
    );
  }
  if (!matches) {
    throw new FlagError(
      `-${prefix}-key "${keyPath}" is not the key of the certificate in -${prefix}-cert "${certPath}"`,
    );
  }
  return { cert, key };
}

/** Reads a PEM file holding at least one certificate, checking that the first one parses. */
function readCertificate(flag: string, path: string): string {
  const pem = readPem(flag, path);
  try {
    new X509Certificate(pem);
  } catch (err) {
    throw new FlagError(`-${flag} "${path}" holds no valid certificate: ${errorText(err)}`);
  }
  return pem;
}

function readPem(flag: string, path: string): string {
  let text: string;
  try {
    text = Deno.readTextFileSync(path);
  } catch (err) {
    throw new FlagError(`cannot read -${flag} "${path}": ${errorText(err)}`);
  }
  if (!text.includes("-----BEGIN ")) {
    throw new FlagError(`-${flag} "${path}" is not a PEM file (no "-----BEGIN" line)`);
  }
  return text;
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
