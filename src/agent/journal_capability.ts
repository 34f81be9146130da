// The journal as a capability (src/agent/journal_start.ts starts it). Loaded only when a node runs the
// journal: its encryption (age, with its curves) and its modules would cost every other agent memory idle.
// An app embedding the agent (src/sdk) adds its own database and in-process handlers.
import type Database from "better-sqlite3";
import type { JournalConfig } from "../config/index.ts";
import type { InProcessHandler } from "../journal/index.ts";
import type { Capability } from "./capability.ts";

/** What an embedding app gives the journal beside its config section. */
export interface JournalEmbedding {
  /** The app's database: the journal's tables go in it instead of journal.db. */
  db?: Database.Database;
  /** Handlers by entry type ("*" for the rest), beside journal.handlers; a type in both is refused. */
  handlers?: Readonly<Record<string, InProcessHandler>>;
}

export interface JournalCapabilityConfig extends JournalConfig {
  embedding?: JournalEmbedding;
}

export const journalCapability: Capability<JournalCapabilityConfig> = {
  name: "journal",
  async start(config, base) {
    const { startJournal } = await import("./journal_start.ts");
    return startJournal(config, base);
  },
};
