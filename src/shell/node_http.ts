// node:http loaded with require, not an ESM import. An ESM import of a built-in module copies every export
// into the module namespace, and node:http's WebSocket, CloseEvent and MessageEvent exports are getters that
// load the bundled undici: ~10 MiB of RSS in every process, for classes Tandem never uses.
import { createRequire } from "node:module";

export const http = createRequire(import.meta.url)("node:http") as typeof import("node:http");
