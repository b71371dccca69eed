/**
 * The web console: a static single-page app (lib/console/assets/) embedded
 * in the program and served by every node under /console/. The page talks
 * only to the node's own HTTP API (/db/request, /nodes, /status), so it
 * works against any node of a cluster and needs nothing from the network.
 *
 * @module
 */

export { CONSOLE_PREFIX, consoleFileNames, handleConsole } from "./serve.ts";
