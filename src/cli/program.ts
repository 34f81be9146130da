// The `tandem` program. Each subcommand lives in src/cli/commands/<name>.ts and registers itself here.
import { Command } from "commander";
import { registerAgentCommand } from "./commands/agent.ts";
import { registerBackupCommands } from "./commands/backup.ts";
import { registerBlobCommands } from "./commands/blob.ts";
import { registerConfigCommand } from "./commands/config.ts";
import { registerDevCommand } from "./commands/dev.ts";
import { registerEventsCommand } from "./commands/events.ts";
import { registerInitCommand } from "./commands/init.ts";
import { registerJournalCommands } from "./commands/journal.ts";
import { registerMemberCommands } from "./commands/member.ts";
import { registerProvisionCommands } from "./commands/provision.ts";
import { registerServiceControlCommands } from "./commands/service_control.ts";
import { registerServicesCommand } from "./commands/services.ts";
import { registerStatusCommand } from "./commands/status.ts";
import { registerStoreCommands } from "./commands/store.ts";
import { registerSyncCommand } from "./commands/sync.ts";
import { registerTlsCommand } from "./commands/tls.ts";
import { registerTokenCommand } from "./commands/token.ts";
import { VERSION } from "./version.ts";

export async function runCli(argv: readonly string[]): Promise<void> {
  const program = new Command();
  program
    .name("tandem")
    .description(
      "High-availability daemon for small fleets: an encrypted mesh between nodes, failure detection, " +
        "leader election with fencing terms, a replicated store of small files, services with failover and a journal replicating actions. Run `tandem <command> --help` for details and examples.",
    )
    .version(VERSION)
    .showHelpAfterError("(run with --help for usage)");

  registerInitCommand(program);
  registerConfigCommand(program);
  registerTlsCommand(program);
  registerTokenCommand(program);
  registerAgentCommand(program);
  registerStatusCommand(program);
  registerServicesCommand(program);
  registerServiceControlCommands(program);
  registerEventsCommand(program);
  registerMemberCommands(program);
  registerStoreCommands(program);
  registerJournalCommands(program);
  registerBlobCommands(program);
  registerBackupCommands(program);
  registerProvisionCommands(program);
  registerSyncCommand(program);
  registerDevCommand(program);

  await program.parseAsync(argv);
}
