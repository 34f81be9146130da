// Test plumbing for the store API: a router with the store routes on a loopback server whose caller
// identity comes from a header (a stand-in for the TLS certificate), and raw requests whose path is sent
// exactly as written (fetch would resolve `..` before it leaves).
import { createServer, request, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { pino } from "pino";
import { type ApiRouter, createApiRouter } from "../../../src/api/router.ts";
import { type StoreRoutesOptions, storeRoutes } from "../../../src/api/store_routes.ts";
import type { AclRule } from "../../../src/config/index.ts";
import type { StoreService } from "../../../src/store/types.ts";

export interface StoreServer {
  server: Server;
  base: string;
  close(): Promise<void>;
}

export async function startStoreServer(
  service: StoreService,
  options: { acl?: AclRule[]; inflightMax?: number; routes?: Partial<StoreRoutesOptions> } = {},
): Promise<StoreServer> {
  const logger = pino({ level: "silent" });
  const router = createApiRouter({
    nodeId: "n1",
    status: () => ({}),
    acl: options.acl ?? [{ path: "^/", cn: ".*" }],
    logger,
    routes: storeRoutes(service, { nodeId: "n1", logger, ...options.routes }),
    ...(options.inflightMax === undefined ? {} : { inflightMax: options.inflightMax }),
  });
  return serveRouter(router);
}

/** Serves `router` on a loopback port; header x-test-cn stands in for the client certificate's CN. */
export async function serveRouter(router: ApiRouter): Promise<StoreServer> {
  const server = createServer((req, res) => {
    const cn = req.headers["x-test-cn"];
    router(
      req,
      res,
      typeof cn === "string" ? { kind: "certificate", name: cn } : { kind: "local", name: "local" },
    );
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    server,
    base,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

export interface RawResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
  json(): { error?: { code: string; message: string } } & Record<string, unknown>;
}

/** One request with the path sent verbatim; `body` may be bytes or a string. */
export function rawRequest(
  base: string,
  method: string,
  path: string,
  options: { headers?: Record<string, string>; body?: string | Uint8Array } = {},
): Promise<RawResponse> {
  const url = new URL(base);
  return new Promise((resolve, reject) => {
    const req = request(
      { host: url.hostname, port: url.port, method, path, headers: options.headers ?? {}, agent: false },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (chunk: Buffer) => chunks.push(chunk));
        res.on("end", () => {
          const body = Buffer.concat(chunks);
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body,
            json: () => JSON.parse(body.toString("utf8")),
          });
        });
        res.on("error", reject);
      },
    );
    // A server that answers before reading the whole body may reset the upload; the answer still counts.
    req.on("error", reject);
    req.end(options.body);
  });
}

export interface SseEvent {
  id?: string;
  event?: string;
  data?: string;
  comment?: string;
}

/** An open event stream: `next()` yields parsed events (comments included) in order. */
export interface EventStream {
  status: number;
  next(): Promise<SseEvent>;
  /** Stops reading from the socket (a slow consumer) until `resume()`. */
  pause(): void;
  resume(): void;
  /** Resolves when the server ends the stream. */
  ended: Promise<void>;
  close(): void;
}

export function openEvents(
  base: string,
  path: string,
  headers: Record<string, string> = {},
): Promise<EventStream> {
  const url = new URL(base);
  return new Promise((resolve, reject) => {
    const req = request({ host: url.hostname, port: url.port, path, headers, agent: false }, (res) => {
      const events: SseEvent[] = [];
      const waiters: Array<(event: SseEvent) => void> = [];
      let buffered = "";
      res.setEncoding("utf8");
      res.on("data", (text: string) => {
        buffered += text;
        for (let end = buffered.indexOf("\n\n"); end !== -1; end = buffered.indexOf("\n\n")) {
          const block = buffered.slice(0, end);
          buffered = buffered.slice(end + 2);
          const event: SseEvent = {};
          for (const line of block.split("\n")) {
            const colon = line.indexOf(":");
            const field = line.slice(0, colon);
            const value = line.slice(colon + 1).trimStart();
            if (field === "") event.comment = value;
            else if (field === "id" || field === "event" || field === "data") event[field] = value;
          }
          const waiter = waiters.shift();
          if (waiter) waiter(event);
          else events.push(event);
        }
      });
      const ended = new Promise<void>((done) => res.on("close", done));
      resolve({
        status: res.statusCode ?? 0,
        next: () => {
          const event = events.shift();
          return event ? Promise.resolve(event) : new Promise((r) => waiters.push(r));
        },
        pause: () => res.pause(),
        resume: () => res.resume(),
        ended,
        close: () => req.destroy(),
      });
    });
    req.on("error", reject);
    req.end();
  });
}

/** The next event that is not a comment. */
export async function nextChange(stream: EventStream): Promise<SseEvent> {
  for (;;) {
    const event = await stream.next();
    if (event.comment === undefined) return event;
  }
}
