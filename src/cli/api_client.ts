// A small client for the local HTTP API, used by `tandem status` and `tandem dev`.
import { loadConfig } from "../config/index.ts";

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

export async function getJson(baseUrl: string, path: string, timeoutMs = 3_000): Promise<unknown> {
  let response: Response;
  try {
    response = await fetch(`${baseUrl}${path}`, { signal: AbortSignal.timeout(timeoutMs) });
  } catch (cause) {
    throw new ApiUnreachableError(`cannot reach the Tandem API at ${baseUrl} (is the agent running?)`, {
      cause,
    });
  }
  const body = (await response.json().catch(() => null)) as { error?: { message?: string } } | null;
  if (!response.ok) {
    throw new ApiResponseError(body?.error?.message ?? `HTTP ${response.status}`, response.status);
  }
  return body;
}
