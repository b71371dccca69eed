/**
 * The shape of an embedded console file, shared by the generator's output
 * (assets.gen.ts) and the handler, so the generated module imports nothing
 * but this type.
 *
 * @module
 */

/** A file of the web console held in the program. */
export interface EmbeddedAsset {
  /** The Content-Type header value. */
  readonly type: string;
  /** A strong ETag (quoted content hash). */
  readonly etag: string;
  /** The file's content. */
  readonly text: string;
}
