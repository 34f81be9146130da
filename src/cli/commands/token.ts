// `tandem token create|list|revoke`: bearer tokens for the API (src/api/tokens.ts). A new token is printed
// once, on stdout alone so it can be piped into a secret store; the file keeps only its SHA-256. Agents
// re-read the file when it changes, so create and revoke take effect without a restart.
import type { Command } from "commander";
import {
  createToken,
  readTokensFile,
  revokeToken,
  TokenNameError,
  TokensFileError,
} from "../../api/index.ts";
import { loadConfig } from "../../config/index.ts";
import { configPathFrom } from "../config_source.ts";

const tokensFileDefault = "tokens.yml";

interface FileOptions {
  file?: string;
  config?: string;
}

/** --file wins; else the config's api.tokens_file; else ./tokens.yml. */
export function tokensFileFrom(options: FileOptions): string {
  if (options.file !== undefined) return options.file;
  const loaded = loadConfig(configPathFrom(options.config));
  if (loaded.ok && loaded.value.api.tokensFile !== null) return loaded.value.api.tokensFile;
  return tokensFileDefault;
}

function withFileOptions(command: Command): Command {
  return command
    .option("-f, --file <file>", "tokens file (default: the config's api.tokens_file, else ./tokens.yml)")
    .option(
      "-c, --config <file>",
      "read api.tokens_file from this config (default: $TANDEM_CONFIG or ./tandem.yml)",
    );
}

/** Runs a file operation; a malformed file or a refused name is a clear error with exit code 1. */
function guarded(command: Command, run: () => void): void {
  try {
    run();
  } catch (error) {
    if (!(error instanceof TokensFileError || error instanceof TokenNameError)) throw error;
    command.error(`tandem token ${command.name()}: ${error.message}`);
  }
}

export function registerTokenCommand(program: Command): void {
  const token = program
    .command("token")
    .description("create, list and revoke bearer tokens for the API (only their SHA-256 is stored)")
    .addHelpText(
      "after",
      `
A request with "Authorization: Bearer <token>" acts as token:<name> under the ACL, on the TLS port and on
the loopback API. Point api.tokens_file at the file; agents pick up changes without a restart.
Examples:
  tandem token create ci-deploy --file /etc/tandem/tokens.yml
  tandem token list
  tandem token revoke ci-deploy`,
    );

  withFileOptions(token.command("create"))
    .description("add a token and print it once (it cannot be shown again)")
    .argument("<name>", "who holds it; the ACL sees token:<name>")
    .action((name: string, options: FileOptions, command: Command) =>
      guarded(command, () => {
        const file = tokensFileFrom(options);
        const secret = createToken(file, name, new Date());
        command.configureOutput().writeOut?.(`${secret}\n`);
        command
          .configureOutput()
          .writeErr?.(`created token ${name} in ${file} (shown once above; the ACL sees token:${name})\n`);
      }),
    );

  withFileOptions(token.command("list"))
    .description("list token names and creation times (never the tokens)")
    .option("--json", "one JSON object per line")
    .action((options: FileOptions & { json?: boolean }, command: Command) =>
      guarded(command, () => {
        for (const record of readTokensFile(tokensFileFrom(options))) {
          const line = options.json
            ? JSON.stringify({ name: record.name, created: record.created })
            : `${record.name.padEnd(24)}  ${record.created}`;
          command.configureOutput().writeOut?.(`${line}\n`);
        }
      }),
    );

  withFileOptions(token.command("revoke"))
    .description("remove a token; agents refuse it from their next request on")
    .argument("<name>", "the token's name")
    .action((name: string, options: FileOptions, command: Command) =>
      guarded(command, () => {
        const file = tokensFileFrom(options);
        if (!revokeToken(file, name)) throw new TokenNameError(`no token named "${name}" in ${file}`);
        command.configureOutput().writeOut?.(`revoked token ${name}\n`);
      }),
    );
}
