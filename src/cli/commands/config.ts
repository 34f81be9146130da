// `tandem config check|schema`: validate a tandem.yml (and the key files it names), or print its JSON Schema.
import type { Command } from "commander";
import { configJsonSchemaText, loadConfig, loadMeshSecurity, resolveConfigPath } from "../../config/index.ts";

export function registerConfigCommand(program: Command): void {
  const config = program
    .command("config")
    .description("validate the configuration or print its JSON Schema")
    .addHelpText(
      "after",
      "\nExamples:\n  tandem config check\n  tandem config check -c /etc/tandem/tandem.yml\n  tandem config schema > tandem.schema.json",
    );

  config
    .command("check")
    .description(
      "check the config file and the certificate, key or PSK files it names; exit 1 on any problem",
    )
    .option("-c, --config <file>", "config file (default: $TANDEM_CONFIG or ./tandem.yml)")
    .addHelpText(
      "after",
      "\nPrints `ok: <file>`, or every problem as file:line:col: key: message.\nExample:\n  TANDEM_CONFIG=/etc/tandem/tandem.yml tandem config check",
    )
    .action(async (options: { config?: string }, command: Command) => {
      const output = command.configureOutput();
      const path = resolveConfigPath(options.config);
      const loaded = loadConfig(path);
      if (!loaded.ok)
        return command.error(loaded.error.format(), { exitCode: 1, code: "tandem.config.invalid" });
      const security = await loadMeshSecurity(loaded.value);
      if (!security.ok)
        return command.error(security.error.format(), { exitCode: 1, code: "tandem.config.invalid" });
      for (const warning of security.value.warnings) output.writeErr?.(`warning: ${warning}\n`);
      output.writeOut?.(`ok: ${path}\n`);
    });

  config
    .command("schema")
    .description("print the JSON Schema of tandem.yml (for editors and validators)")
    .action((_options: unknown, command: Command) => {
      command.configureOutput().writeOut?.(configJsonSchemaText());
    });
}
