// The store API client behind `tandem put|get|rm|ls|watch|sync`. It knows several endpoints: every URL
// given, and every address a URL's hostname resolves to. A request fails over to the next endpoint on a
// connection error, a timeout or a 5xx; a 4xx is the answer (the request itself is wrong) and is thrown as
// StoreApiError at once. The endpoint that answered last is tried first next time.

import { lookup } from "node:dns/promises";
import type { IncomingMessage } from "node:http";
import { request as httpsRequest } from "node:https";
import { isIP } from "node:net";
import type { Readable } from "node:stream";
import { setTimeout as delay } from "node:timers/promises";
import type { EntryJson, WriteOutcomeJson } from "../api/index.ts";
import { validateStorePath } from "../core/store_path.ts";
import { http } from "../shell/index.ts";
import type { MinAcks } from "../store/index.ts";
import { type ApiCredentials, credentialRequestOptions } from "./api_client.ts";
import { describeRequestFailure } from "./request_failure.ts";

export type { EntryJson, WriteOutcomeJson };

/** The server refused the request with a typed error (4xx, or 5xx from the last endpoint). */
export class StoreApiError extends Error {
  override name = "StoreApiError";
  readonly status: number;
  readonly code: string;
  constructor(message: string, status: number, code: string) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

/** No endpoint answered; `cause` lists why each attempt failed. */
export class StoreUnreachableError extends Error {
  override name = "StoreUnreachableError";
}

export interface Endpoint {
  /** Where to connect: the URL with the hostname replaced by one resolved address. */
  url: URL;
  /** The original host[:port], sent as Host and used for TLS server name checks. */
  host: string;
  hostname: string;
}

export interface StoreClientOptions {
  /** A dead host must not stall failover: connect within this (default 1 s). */
  connectTimeoutMs?: number;
  /** A whole attempt, body included; above the server's write timeout so a slow ack is not retried (default 15 s). */
  attemptTimeoutMs?: number;
  /** A bearer token, and for https:// the CA and client certificate (api_client.ts). */
  credentials?: ApiCredentials;
}

export interface WriteResult {
  /** 200 acknowledged by min_acks peers; 202 committed on the node but not (yet) acknowledged. */
  status: number;
  outcome: WriteOutcomeJson;
}

export interface ListPage {
  entries: EntryJson[];
  next: string | null;
}

export interface WatchEvent extends EntryJson {
  id: string;
  seq: number;
}

interface Reply {
  status: number;
  headers: IncomingMessage["headers"];
  body: Buffer;
}

/** Splits repeated and comma-separated --api values into URLs; throws on a malformed one (a usage error). */
export function parseApiUrls(values: readonly string[]): URL[] {
  const urls = values
    .flatMap((value) => value.split(","))
    .map((text) => text.trim())
    .filter((text) => text !== "");
  return urls.map((text) => {
    const url = new URL(text);
    if (url.protocol !== "http:" && url.protocol !== "https:")
      throw new TypeError(`${text}: not an http(s) URL`);
    return url;
  });
}

/** One endpoint per resolved address of each URL, in the order given. */
export async function resolveEndpoints(urls: readonly URL[]): Promise<Endpoint[]> {
  const endpoints: Endpoint[] = [];
  for (const url of urls) {
    const hostname = url.hostname.replace(/^\[(.*)\]$/, "$1");
    // An unresolvable name stays as it is: its attempt fails like a dead host, and the others still serve.
    const addresses = isIP(hostname)
      ? [hostname]
      : await lookup(hostname, { all: true }).then(
          (found) => found.map((a) => a.address),
          () => [hostname],
        );
    for (const address of addresses) {
      const target = new URL(url);
      target.hostname = isIP(address) === 6 ? `[${address}]` : address;
      endpoints.push({ url: target, host: url.host, hostname });
    }
  }
  return endpoints;
}

const queryOf = (params: Record<string, string | number | undefined>) => {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) if (value !== undefined) search.set(key, String(value));
  const text = search.toString();
  return text === "" ? "" : `?${text}`;
};

const watchReconnectDelayMs = 250;

export class StorePathError extends Error {
  override name = "StorePathError";
}

/**
 * The URL path of an entry, each segment encoded (the server decodes once). A path the store would refuse
 * is refused here, before URL normalisation could turn `../x` into another route.
 */
export function storeUrlPath(path: string): string {
  const checked = validateStorePath(path);
  if (!checked.ok) throw new StorePathError(`invalid store path "${path}": ${checked.reason}`);
  return `/api/v1/store/${path.split("/").map(encodeURIComponent).join("/")}`;
}

export class StoreClient {
  readonly endpoints: readonly Endpoint[];
  private readonly connectTimeoutMs: number;
  private readonly attemptTimeoutMs: number;
  /** Per endpoint: its credential headers and TLS options, checked once (a token never goes out in clear). */
  private readonly credentialOptions: ReadonlyArray<ReturnType<typeof credentialRequestOptions>>;
  private readonly credentials: ApiCredentials;
  private preferred = 0;

  /** Throws CredentialsError when a token would travel over plain HTTP to a non-loopback address. */
  constructor(endpoints: readonly Endpoint[], options: StoreClientOptions = {}) {
    if (endpoints.length === 0) throw new RangeError("StoreClient needs at least one endpoint");
    this.endpoints = endpoints;
    this.connectTimeoutMs = options.connectTimeoutMs ?? 1_000;
    this.attemptTimeoutMs = options.attemptTimeoutMs ?? 15_000;
    const credentials = options.credentials ?? {};
    this.credentials = credentials;
    this.credentialOptions = endpoints.map((e) => credentialRequestOptions(e.url, addressOf(e), credentials));
  }

  static async connect(urls: readonly URL[], options: StoreClientOptions = {}): Promise<StoreClient> {
    return new StoreClient(await resolveEndpoints(urls), options);
  }

  /** The endpoint that answered last (where the next request goes first). */
  get current(): Endpoint {
    return this.endpoints[this.preferred]!;
  }

  async get(path: string): Promise<EntryJson | null> {
    const reply = await this.send("GET", storeUrlPath(path), { allowNotFound: true });
    return reply.status === 404 ? null : (JSON.parse(reply.body.toString("utf8")) as EntryJson);
  }

  async getRaw(path: string): Promise<Buffer | null> {
    const reply = await this.send("GET", `${storeUrlPath(path)}?raw=1`, { allowNotFound: true });
    return reply.status === 404 ? null : reply.body;
  }

  put(path: string, value: Uint8Array, minAcks?: MinAcks): Promise<WriteResult> {
    const headers = { "content-type": "application/octet-stream" };
    return this.write("PUT", `${storeUrlPath(path)}${queryOf({ min_acks: minAcks })}`, {
      headers,
      body: value,
    });
  }

  remove(path: string, minAcks?: MinAcks): Promise<WriteResult> {
    return this.write("DELETE", `${storeUrlPath(path)}${queryOf({ min_acks: minAcks })}`, {});
  }

  /** Many writes in one request; a null value deletes. */
  batch(
    writes: ReadonlyArray<{ path: string; value: Uint8Array | null }>,
    minAcks?: MinAcks,
  ): Promise<WriteResult> {
    const body = JSON.stringify({
      writes: writes.map((w) => ({
        path: w.path,
        value: w.value === null ? null : Buffer.from(w.value).toString("base64"),
      })),
      ...(minAcks === undefined ? {} : { minAcks }),
    });
    return this.write("POST", "/api/v1/store", { headers: { "content-type": "application/json" }, body });
  }

  async list(
    prefix: string,
    options: { after?: string; limit?: number; values?: boolean; hashes?: boolean } = {},
  ): Promise<ListPage> {
    const query = queryOf({
      prefix,
      after: options.after,
      limit: options.limit,
      values: options.values ? 1 : undefined,
      hashes: options.hashes ? 1 : undefined,
    });
    const reply = await this.send("GET", `/api/v1/store${query}`, {});
    return JSON.parse(reply.body.toString("utf8")) as ListPage;
  }

  /** Every live entry under the prefix, page after page. */
  async *listAll(
    prefix: string,
    options: { values?: boolean; hashes?: boolean } = {},
  ): AsyncGenerator<EntryJson> {
    let after: string | undefined;
    for (;;) {
      const page = await this.list(prefix, { ...options, ...(after === undefined ? {} : { after }) });
      yield* page.entries;
      if (page.next === null) return;
      after = page.next;
    }
  }

  /**
   * Changes under the prefix as they commit, until `signal` aborts. A dropped stream (node down, overflow)
   * reconnects, failing over like any request, and resumes with Last-Event-ID.
   */
  async *watch(
    prefix: string,
    options: { fromSeq?: number; values?: boolean; signal: AbortSignal },
  ): AsyncGenerator<WatchEvent> {
    let lastEventId: string | undefined;
    while (!options.signal.aborted) {
      const query = queryOf({ prefix, from_seq: options.fromSeq, values: options.values ? 1 : undefined });
      const headers: Record<string, string> = { accept: "text/event-stream" };
      if (lastEventId !== undefined) headers["last-event-id"] = lastEventId;
      const stream = await this.openStream(`/api/v1/store-watch${query}`, headers, options.signal);
      if (stream === null) return;
      for await (const event of sseEvents(stream)) {
        if (event.data === undefined) continue;
        // Cut off as a slow reader: the server says where to pick up.
        if (event.event === "overflow") lastEventId = (JSON.parse(event.data) as { resume: string }).resume;
        if (event.event !== "change") continue;
        lastEventId = event.id;
        yield { ...(JSON.parse(event.data) as Omit<WatchEvent, "id">), id: event.id ?? "" };
      }
      // A stream that keeps dropping must not become a busy loop of reconnects.
      await delay(watchReconnectDelayMs, undefined, { signal: options.signal }).catch(() => {});
    }
  }

  private async write(
    method: string,
    path: string,
    init: { headers?: Record<string, string>; body?: string | Uint8Array },
  ) {
    const reply = await this.send(method, path, init);
    return { status: reply.status, outcome: JSON.parse(reply.body.toString("utf8")) as WriteOutcomeJson };
  }

  /** Tries each endpoint from the preferred one; returns the first answer that is not a failover reason. */
  private async send(
    method: string,
    path: string,
    init: { headers?: Record<string, string>; body?: string | Uint8Array; allowNotFound?: boolean },
  ): Promise<Reply> {
    const failures: string[] = [];
    let serverError: StoreApiError | null = null;
    for (let i = 0; i < this.endpoints.length; i++) {
      const index = (this.preferred + i) % this.endpoints.length;
      const { origin } = this.endpoints[index]!.url;
      let reply: Reply;
      try {
        reply = await this.attempt(index, method, path, init);
      } catch (error) {
        failures.push(describeRequestFailure(error, origin, this.credentials));
        continue;
      }
      if (reply.status >= 500) {
        serverError = apiErrorOf(reply);
        failures.push(`${origin}: HTTP ${reply.status} ${serverError.message}`);
        continue;
      }
      this.preferred = index;
      if (reply.status < 400 || (reply.status === 404 && init.allowNotFound)) return reply;
      throw apiErrorOf(reply);
    }
    // Every endpoint answered, each with a server error: that error is the answer.
    if (serverError !== null && failures.every((f) => / HTTP 5\d\d /.test(f))) throw serverError;
    throw new StoreUnreachableError(`no store API endpoint answered (${failures.join("; ")})`);
  }

  private attempt(
    index: number,
    method: string,
    path: string,
    init: { headers?: Record<string, string>; body?: string | Uint8Array },
  ): Promise<Reply> {
    return new Promise((resolve, reject) => {
      const req = this.open(index, method, path, init.headers ?? {});
      req.setTimeout(this.attemptTimeoutMs, () =>
        req.destroy(new Error(`no answer within ${this.attemptTimeoutMs} ms`)),
      );
      req.on("error", reject);
      req.on("response", (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (chunk: Buffer) => chunks.push(chunk));
        res.on("end", () =>
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }),
        );
        res.on("error", reject);
      });
      req.end(init.body);
    });
  }

  /** A request to one endpoint whose socket must connect within connectTimeoutMs. */
  private open(index: number, method: string, path: string, headers: Record<string, string>) {
    const endpoint = this.endpoints[index]!;
    const { url } = endpoint;
    const credentials = this.credentialOptions[index]!;
    const options = {
      ...credentials,
      method,
      host: addressOf(endpoint),
      port: url.port === "" ? undefined : Number(url.port),
      path: `${url.pathname.replace(/\/+$/, "")}${path}`,
      headers: { ...headers, ...credentials.headers, host: endpoint.host },
      agent: false,
      servername: isIP(endpoint.hostname) ? undefined : endpoint.hostname,
    };
    const req = url.protocol === "https:" ? httpsRequest(options) : http.request(options);
    const connectTimer = setTimeout(
      () => req.destroy(new Error(`no connection within ${this.connectTimeoutMs} ms`)),
      this.connectTimeoutMs,
    );
    req.on("socket", (socket) => {
      if (!socket.connecting) return clearTimeout(connectTimer);
      socket.once("connect", () => clearTimeout(connectTimer));
    });
    req.once("close", () => clearTimeout(connectTimer));
    return req;
  }

  /** An open event stream from the first endpoint that accepts, or null when aborted. */
  private async openStream(
    path: string,
    headers: Record<string, string>,
    signal: AbortSignal,
  ): Promise<IncomingMessage | null> {
    const failures: string[] = [];
    for (let i = 0; i < this.endpoints.length && !signal.aborted; i++) {
      const index = (this.preferred + i) % this.endpoints.length;
      const endpoint = this.endpoints[index]!;
      const req = this.open(index, "GET", path, headers);
      const onAbort = () => req.destroy();
      signal.addEventListener("abort", onAbort, { once: true });
      req.once("close", () => signal.removeEventListener("abort", onAbort));
      try {
        const res = await new Promise<IncomingMessage>((resolve, reject) => {
          req.on("error", reject);
          req.on("response", resolve);
          req.end();
        });
        if (res.statusCode === 200) {
          this.preferred = index;
          return res;
        }
        const body = Buffer.concat(await res.toArray());
        const reply = { status: res.statusCode ?? 0, headers: res.headers, body };
        if (reply.status < 500) throw apiErrorOf(reply);
        failures.push(`${endpoint.url.origin}: HTTP ${reply.status}`);
      } catch (error) {
        if (error instanceof StoreApiError) throw error;
        failures.push(describeRequestFailure(error, endpoint.url.origin, this.credentials));
      }
    }
    if (signal.aborted) return null;
    throw new StoreUnreachableError(`no store API endpoint accepted the watch (${failures.join("; ")})`);
  }
}

/** The address an endpoint connects to, without IPv6 brackets. */
function addressOf(endpoint: Endpoint): string {
  return endpoint.url.hostname.replace(/^\[(.*)\]$/, "$1");
}

function apiErrorOf(reply: Reply): StoreApiError {
  let body: { error?: { code?: string; message?: string } } | null = null;
  try {
    body = JSON.parse(reply.body.toString("utf8"));
  } catch {
    // Not a typed error (a proxy's page): the status says enough.
  }
  return new StoreApiError(
    body?.error?.message ?? `HTTP ${reply.status}`,
    reply.status,
    body?.error?.code ?? `http_${reply.status}`,
  );
}

export interface SseEvent {
  id?: string;
  event?: string;
  data?: string;
}

/** Parses a server-sent event stream (comments skipped); ends when the stream ends or breaks. */
export async function* sseEvents(stream: Readable): AsyncGenerator<SseEvent> {
  stream.setEncoding("utf8");
  let buffered = "";
  try {
    for await (const text of stream as AsyncIterable<string>) {
      buffered += text;
      for (let end = buffered.indexOf("\n\n"); end !== -1; end = buffered.indexOf("\n\n")) {
        const block = buffered.slice(0, end);
        buffered = buffered.slice(end + 2);
        const event: SseEvent = {};
        for (const line of block.split("\n")) {
          const match = /^(id|event|data): ?(.*)$/.exec(line);
          if (match) event[match[1] as "id" | "event" | "data"] = match[2];
        }
        if (event.event !== undefined || event.data !== undefined) yield event;
      }
    }
  } catch {
    // A broken stream ends like a closed one: the caller reconnects and resumes.
  }
}
