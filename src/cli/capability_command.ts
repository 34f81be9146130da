// What the commands of an optional capability (journal, blob, backup, provision) share: one API call with
// the command's options, and a guard that prints an error (control bytes escaped) with exit code 1, saying
// plainly when the node has no section for the capability (its routes answer "no route").
import {
  type ApiCommandOptions,
  ApiResponseError,
  apiBaseUrl,
  apiCredentialsFrom,
  callJson,
} from "./api_client.ts";
import { configPathFrom } from "./config_source.ts";
import { escapeControls } from "./terminal_text.ts";

/** One API call answered with JSON, to the API the options name (--api, --config, $TANDEM_API). */
export function callApi(
  options: ApiCommandOptions,
  path: string,
  init: { method?: string; body?: unknown; timeoutMs: number },
): Promise<unknown> {
  const base = apiBaseUrl({ ...options, configPath: configPathFrom(options.config) });
  return callJson(base, path, {
    method: init.method ?? "GET",
    ...(init.body === undefined ? {} : { body: init.body }),
    timeoutMs: init.timeoutMs,
    credentials: apiCredentialsFrom(options),
  });
}

/**
 * A guard for `tandem <prefix> NAME`: runs the action; an error is printed as `tandem <prefix> NAME:
 * message`. A 404 "no route" under `route` means the node runs without the capability: `missing` says so.
 */
export function capabilityGuard(prefix: string, route: string, missing: string) {
  return async (name: string, action: () => Promise<void>): Promise<void> => {
    try {
      await action();
    } catch (error) {
      const absent =
        error instanceof ApiResponseError &&
        error.status === 404 &&
        error.message.startsWith(`no route ${route}`);
      const message = absent ? missing : (error as Error).message;
      process.stderr.write(`tandem ${prefix}${name}: ${escapeControls(message)}\n`);
      process.exitCode = 1;
    }
  };
}
