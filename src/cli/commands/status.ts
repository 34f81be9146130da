// `tandem status`: this node's view of the cluster, as a table or JSON.
import type { Command } from "commander";
import {
  apiBaseUrl,
  apiCredentialsFrom,
  type CredentialOptions,
  getJson,
  withCredentialOptions,
} from "../api_client.ts";
import { configPathFrom } from "../config_source.ts";
import { renderStatus, type StatusDocument } from "../status_table.ts";
import { escapeControls } from "../terminal_text.ts";

export function registerStatusCommand(program: Command): void {
  const command = program
    .command("status")
    .description("show this node's view of the cluster: leader, term, peers with state and round-trip time")
    .option(
      "-c, --config <file>",
      "read the API address from this config (default: $TANDEM_CONFIG or ./tandem.yml)",
    )
    .option(
      "--api <url>",
      "API base URL, e.g. http://127.0.0.1:7401 or https://10.0.0.1:7400 (default: from config, else $TANDEM_API)",
    )
    .option("--json", "print the raw JSON of GET /api/v1/status");
  withCredentialOptions(command)
    .addHelpText(
      "after",
      "\nExamples:\n  tandem status\n  tandem status --api http://127.0.0.1:7411 --json" +
        "\n  tandem status --api https://10.0.0.1:7400 --ca tls/ca.pem --cert tls/ops.pem --key tls/ops-key.pem",
    )
    .action(async (options: CredentialOptions & { config?: string; api?: string; json?: boolean }) => {
      try {
        const base = apiBaseUrl({ ...options, configPath: configPathFrom(options.config) });
        const status = await getJson(base, "/api/v1/status", undefined, apiCredentialsFrom(options));
        process.stdout.write(
          options.json ? `${JSON.stringify(status, null, 2)}\n` : renderStatus(status as StatusDocument),
        );
      } catch (error) {
        process.stderr.write(`tandem status: ${escapeControls((error as Error).message)}\n`);
        process.exitCode = 1;
      }
    });
}
