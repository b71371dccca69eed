/**
 * Authentication and authorization for `-auth` (rqlite-api.md §10): the
 * users file (users.ts), the permission rule and password checks
 * (check.ts), and which permission each HTTP endpoint and cluster request
 * needs (routes.ts).
 *
 * @module
 */

export * from "./users.ts";
export * from "./check.ts";
export * from "./routes.ts";
