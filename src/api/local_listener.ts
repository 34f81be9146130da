// The plain-HTTP API for operators on the same machine. Loopback only: config validation refuses any other
// address, and this re-checks, because plain HTTP must never face a network. A request here is the local
// operator, unless it carries a bearer token: then the router makes it the token's holder, under the ACL.
import type { Server } from "node:http";
import { isLoopbackHost } from "../config/index.ts";
import { answerHttpClientError } from "../mesh/index.ts";
import { http } from "../shell/index.ts";
import type { ApiRouter } from "./router.ts";

export class NonLoopbackError extends Error {
  override name = "NonLoopbackError";
}

export async function startLocalApi(host: string, port: number, router: ApiRouter): Promise<Server> {
  if (!isLoopbackHost(host)) throw new NonLoopbackError(`api.listen must be a loopback address, got ${host}`);
  const server = http.createServer((req, res) => router(req, res, { kind: "local", name: "local" }));
  server.keepAliveTimeout = 5_000;
  // A request the parser refuses (e.g. a URL over the header size limit) still gets a typed JSON error.
  server.on("clientError", answerHttpClientError);
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  return server;
}
