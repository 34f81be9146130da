// `tandem services`: where each service runs and why, as the leader placed it, from any node.
import type { Command } from "commander";
import type { ServicesJson } from "../../api/index.ts";
import {
  apiBaseUrl,
  apiCredentialsFrom,
  type CredentialOptions,
  getJson,
  withCredentialOptions,
} from "../api_client.ts";
import { configPathFrom } from "../config_source.ts";
import { renderServices } from "../services_table.ts";
import { escapeControls } from "../terminal_text.ts";

export function registerServicesCommand(program: Command): void {
  const command = program
    .command("services")
    .description(
      "show each service: its owner, the state the owner reports, its fencing token, and why it is there",
    )
    .option(
      "-c, --config <file>",
      "read the API address from this config (default: $TANDEM_CONFIG or ./tandem.yml)",
    )
    .option("--api <url>", "API base URL (default: from config, else $TANDEM_API)")
    .option("--json", "print the raw JSON of GET /api/v1/services");
  withCredentialOptions(command)
    .addHelpText(
      "after",
      "\nExamples:\n  tandem services\n  tandem services --api http://127.0.0.1:7411 --json",
    )
    .action(async (options: CredentialOptions & { config?: string; api?: string; json?: boolean }) => {
      try {
        const base = apiBaseUrl({ ...options, configPath: configPathFrom(options.config) });
        const doc = await getJson(base, "/api/v1/services", undefined, apiCredentialsFrom(options));
        process.stdout.write(
          options.json ? `${JSON.stringify(doc, null, 2)}\n` : renderServices(doc as ServicesJson),
        );
      } catch (error) {
        process.stderr.write(`tandem services: ${escapeControls((error as Error).message)}\n`);
        process.exitCode = 1;
      }
    });
}
