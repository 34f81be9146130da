// A small client for the API, used by `tandem status` and `tandem dev`, and the credentials every API
// command shares: a bearer token, and for https:// URLs to the TLS port the cluster CA and a client
// certificate (`tandem tls cert NAME --client`). PSK mode has no CLI client over https.
import { readFileSync } from "node:fs";
import type { ClientRequest, IncomingMessage } from "node:http";
import { request as httpsRequest } from "node:https";
import type { Command } from "commander";
import { isLoopbackHost, loadConfig } from "../config/index.ts";
import { http } from "../shell/index.ts";
import { type CredentialFiles, credentialFileProblem, describeRequestFailure } from "./request_failure.ts";

export class ApiUnreachableError extends Error {
  override name = "ApiUnreachableError";
}

export class ApiResponseError extends Error {
  override name = "ApiResponseError";
  readonly status: number;
  constructor(message: string, status: number) {
    super(message);
    this.status = status;
  }
}

/** --api wins; else the config's api.listen; else $TANDEM_API; else the default local port. */
export function apiBaseUrl(options: { api?: string; config?: string; configPath: string }): string {
  if (options.api) return options.api.replace(/\/+$/, "");
  if (options.config || !process.env.TANDEM_API) {
    const loaded = loadConfig(options.configPath);
    if (loaded.ok && loaded.value.api.listen) {
      const { host, port } = loaded.value.api.listen;
      return `http://${host.includes(":") ? `[${host}]` : host}:${port}`;
    }
    if (!loaded.ok && options.config) throw new ApiUnreachableError(loaded.error.format());
  }
  return (process.env.TANDEM_API ?? "http://127.0.0.1:7401").replace(/\/+$/, "");
}

export class CredentialsError extends Error {
  override name = "CredentialsError";
}

/** What a client presents. Secrets stay in memory: never printed, never in an error message. */
export interface ApiCredentials {
  /** Sent as `Authorization: Bearer`. */
  token?: string;
  /** PEM of the CA the server certificate must chain to (https only). */
  ca?: Buffer;
  /** PEM client certificate and its key, for the TLS port in mtls mode (https only; both or neither). */
  cert?: Buffer;
  key?: Buffer;
  /** The files they were read from, for error messages. */
  files?: CredentialFiles;
}

/** What a command given withApiOptions() receives, besides its own options. */
export interface ApiCommandOptions extends CredentialOptions {
  config?: string;
  api?: string;
  json?: boolean;
}

export interface CredentialOptions {
  token?: string;
  ca?: string;
  cert?: string;
  key?: string;
}

/** --token, --ca, --cert, --key; each falls back to $TANDEM_TOKEN, $TANDEM_CA, $TANDEM_CERT, $TANDEM_KEY. */
/**
 * --config, --api and --json, and the credential options: what every command that calls the API takes.
 * `keyFlag`: where --key means something else to the command (`journal record --key` is an ordering key),
 * the client key's flag is --cert-key, read into options.certKey.
 */
export function withApiOptions(command: Command, keyFlag: "--key" | "--cert-key" = "--key"): Command {
  const withApi = command
    .option(
      "-c, --config <file>",
      "read the API address from this config (default: $TANDEM_CONFIG or ./tandem.yml)",
    )
    .option(
      "--api <url>",
      "API base URL of any node, e.g. http://127.0.0.1:7401 (default: from config, else $TANDEM_API)",
    )
    .option("--json", "print the API's JSON answer");
  return withCredentialOptions(withApi, keyFlag);
}

export function withCredentialOptions(command: Command, keyFlag: "--key" | "--cert-key" = "--key"): Command {
  // No defaults shown from the environment: --help must never print a token.
  return command
    .option("--token <token>", "API bearer token (default: $TANDEM_TOKEN)")
    .option("--ca <file>", "https: CA certificate the server must chain to (default: $TANDEM_CA)")
    .option(
      "--cert <file>",
      "https: client certificate (`tandem tls cert NAME --client`; default: $TANDEM_CERT)",
    )
    .option(`${keyFlag} <file>`, "https: the client certificate's private key (default: $TANDEM_KEY)");
}

/** Options first, then the environment; reads the PEM files. Throws CredentialsError naming the file. */
export function apiCredentialsFrom(
  options: CredentialOptions,
  env: NodeJS.ProcessEnv = process.env,
): ApiCredentials {
  const pick = (value: string | undefined, name: string) => value ?? nonEmpty(env[name]);
  const token = pick(options.token, "TANDEM_TOKEN");
  const files = {
    ca: pick(options.ca, "TANDEM_CA"),
    cert: pick(options.cert, "TANDEM_CERT"),
    key: pick(options.key, "TANDEM_KEY"),
  };
  if ((files.cert === undefined) !== (files.key === undefined)) {
    throw new CredentialsError(
      "a client certificate needs both --cert and --key (or TANDEM_CERT and TANDEM_KEY)",
    );
  }
  if (token !== undefined && !/^[\x21-\x7e]+$/.test(token)) {
    throw new CredentialsError("the token must be printable ASCII without spaces");
  }
  const credentials: ApiCredentials = token === undefined ? {} : { token };
  const named: CredentialFiles = {};
  for (const [what, file] of Object.entries(files) as Array<[keyof typeof files, string | undefined]>) {
    if (file === undefined) continue;
    named[what] = file;
    try {
      credentials[what] = readFileSync(file);
    } catch (cause) {
      const code = (cause as NodeJS.ErrnoException).code ?? "unreadable";
      const why = readErrors[code] ?? "cannot be read";
      throw new CredentialsError(`cannot read the --${what} file ${file}: ${why} (${code})`);
    }
  }
  if (Object.keys(named).length === 0) return credentials;
  credentials.files = named;
  const problem = credentialFileProblem(named, credentials);
  if (problem !== null) throw new CredentialsError(problem);
  return credentials;
}

const readErrors: Record<string, string> = {
  ENOENT: "no such file",
  EACCES: "permission denied",
  EPERM: "permission denied",
  EISDIR: "it is a directory",
};

/**
 * Request options carrying the credentials to `url`. A token never travels in clear text off this machine:
 * over http:// it goes to loopback addresses only (the plain API listens nowhere else).
 */
export function credentialRequestOptions(url: URL, address: string, credentials: ApiCredentials) {
  if (credentials.token !== undefined && url.protocol === "http:" && !isLoopbackHost(address)) {
    throw new CredentialsError(
      `refusing to send a token over plain HTTP to ${url.host}; use the TLS port (https://)`,
    );
  }
  const headers: Record<string, string> =
    credentials.token === undefined ? {} : { authorization: `Bearer ${credentials.token}` };
  if (url.protocol !== "https:") return { headers };
  const { ca, cert, key } = credentials;
  return { headers, ...(ca ? { ca } : {}), ...(cert && key ? { cert, key } : {}) };
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value === "" ? undefined : value;
}

/** A request to the API with the credentials, not yet sent; `timeoutMs` bounds the wait for an answer. */
function apiRequest(
  baseUrl: string,
  path: string,
  options: {
    method?: string;
    headers?: Record<string, string>;
    timeoutMs: number;
    credentials: ApiCredentials;
  },
): ClientRequest {
  const url = new URL(`${baseUrl}${path}`);
  const address = url.hostname.replace(/^\[(.*)\]$/, "$1");
  const credentialOptions = credentialRequestOptions(url, address, options.credentials);
  // No keep-alive agent: a one-shot command must not hold a socket open after its answer.
  const req = (url.protocol === "https:" ? httpsRequest : http.request)(url, {
    ...credentialOptions,
    method: options.method ?? "GET",
    headers: { ...credentialOptions.headers, ...options.headers },
    timeout: options.timeoutMs,
    agent: false,
  });
  req.on("timeout", () => req.destroy(new Error(`no answer within ${options.timeoutMs} ms`)));
  return req;
}

/** One API request: status and body text, or ApiUnreachableError saying why no answer came. */
export async function requestApi(
  baseUrl: string,
  path: string,
  options: { method?: string; body?: unknown; timeoutMs: number; credentials: ApiCredentials },
): Promise<{ status: number; text: string }> {
  const text = options.body === undefined ? undefined : JSON.stringify(options.body);
  const headers: Record<string, string> = text === undefined ? {} : { "content-type": "application/json" };
  try {
    return await new Promise((resolve, reject) => {
      const req = apiRequest(baseUrl, path, { ...options, headers });
      req.on("error", reject);
      req.on("response", (res: IncomingMessage) => {
        res.setEncoding("utf8");
        let received = "";
        res.on("data", (chunk: string) => {
          received += chunk;
        });
        res.on("end", () => resolve({ status: res.statusCode ?? 0, text: received }));
        res.on("error", reject);
      });
      req.end(text);
    });
  } catch (cause) {
    throw new ApiUnreachableError(describeRequestFailure(cause, baseUrl, options.credentials), { cause });
  }
}

/**
 * A streaming GET (server-sent events by default, or a download): the open response once it answers 200,
 * ApiResponseError with the server's message for another status, ApiUnreachableError when no answer came
 * in `timeoutMs`. The stream itself has no time limit.
 */
export async function openApiStream(
  baseUrl: string,
  path: string,
  options: { timeoutMs: number; credentials: ApiCredentials; accept?: string },
): Promise<IncomingMessage> {
  let res: IncomingMessage;
  try {
    res = await new Promise((resolve, reject) => {
      const accept = options.accept ?? "text/event-stream";
      const req = apiRequest(baseUrl, path, { ...options, headers: { accept } });
      req.on("error", reject);
      req.on("response", (response: IncomingMessage) => {
        req.setTimeout(0);
        resolve(response);
      });
      req.end();
    });
  } catch (cause) {
    throw new ApiUnreachableError(describeRequestFailure(cause, baseUrl, options.credentials), { cause });
  }
  if (res.statusCode === 200) return res;
  const text = Buffer.concat(await res.toArray()).toString("utf8");
  throw new ApiResponseError(errorMessageOf(text) ?? `HTTP ${res.statusCode}`, res.statusCode ?? 0);
}

export async function getJson(
  baseUrl: string,
  path: string,
  timeoutMs = 3_000,
  credentials: ApiCredentials = {},
): Promise<unknown> {
  return callJson(baseUrl, path, { timeoutMs, credentials });
}

/** One API call answered with JSON; a status outside 2xx throws ApiResponseError with the server's message. */
export async function callJson(
  baseUrl: string,
  path: string,
  options: { method?: string; body?: unknown; timeoutMs: number; credentials: ApiCredentials },
): Promise<unknown> {
  const response = await requestApi(baseUrl, path, options);
  if (response.status < 200 || response.status >= 300) {
    throw new ApiResponseError(errorMessageOf(response.text) ?? `HTTP ${response.status}`, response.status);
  }
  return JSON.parse(response.text);
}

/** The message of an API error body, or null (not JSON: a proxy's page; the status says enough). */
function errorMessageOf(text: string): string | null {
  try {
    return (JSON.parse(text) as { error?: { message?: string } }).error?.message ?? null;
  } catch {
    return null;
  }
}
