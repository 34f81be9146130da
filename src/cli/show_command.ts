// The shape of a read-only command (`tandem status`, `tandem services`): GET one API document from the node
// the options point at and print it as a table, or as JSON with --json; any failure is one line on stderr
// and exit code 1.
import type { Command } from "commander";
import {
  apiBaseUrl,
  apiCredentialsFrom,
  type CredentialOptions,
  getJson,
  withCredentialOptions,
} from "./api_client.ts";
import { configPathFrom } from "./config_source.ts";
import { escapeControls } from "./terminal_text.ts";

export interface ShowCommand {
  name: string;
  description: string;
  /** The API route read. */
  path: string;
  examples: string;
  render: (doc: unknown) => string;
}

export function registerShowCommand(program: Command, show: ShowCommand): void {
  const command = program
    .command(show.name)
    .description(show.description)
    .option(
      "-c, --config <file>",
      "read the API address from this config (default: $TANDEM_CONFIG or ./tandem.yml)",
    )
    .option(
      "--api <url>",
      "API base URL, e.g. http://127.0.0.1:7401 or https://10.0.0.1:7400 (default: from config, else $TANDEM_API)",
    )
    .option("--json", `print the raw JSON of GET ${show.path}`);
  withCredentialOptions(command)
    .addHelpText("after", `\nExamples:\n${show.examples}`)
    .action(async (options: CredentialOptions & { config?: string; api?: string; json?: boolean }) => {
      try {
        const base = apiBaseUrl({ ...options, configPath: configPathFrom(options.config) });
        const doc = await getJson(base, show.path, undefined, apiCredentialsFrom(options));
        process.stdout.write(options.json ? `${JSON.stringify(doc, null, 2)}\n` : show.render(doc));
      } catch (error) {
        process.stderr.write(`tandem ${show.name}: ${escapeControls((error as Error).message)}\n`);
        process.exitCode = 1;
      }
    });
}
