/**
 * The statement shape lib/sql produces: the command codec's own `Statement`
 * and `Param` (lib/db/command.ts), so parsed and rewritten statements go into
 * commands without copying. Type-only: lib/sql imports no code from lib/db.
 *
 * @module
 */

export type { Param, ParamValue, Statement } from "../db/command.ts";
