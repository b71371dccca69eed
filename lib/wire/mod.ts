/**
 * # lib/wire — byte-level building blocks of the binary codecs
 *
 * Owns the growable writer and the bounds-checked reader that the command
 * codec (lib/db) and the cluster value codec (lib/cluster) share, so that
 * varint, string and length checks are written once. Invariant: a reader
 * never reads outside its buffer and reports every malformed input through
 * the codec's own typed error.
 *
 * @module
 */

export * from "./bytes.ts";
