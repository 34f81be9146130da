// The journal as a capability (src/agent/journal_start.ts starts it). Loaded only when a node runs the
// journal: its encryption (age, with its curves) and its modules would cost every other agent memory idle.
import type { JournalConfig } from "../config/index.ts";
import type { Capability } from "./capability.ts";

export const journalCapability: Capability<JournalConfig> = {
  name: "journal",
  async start(config, base) {
    const { startJournal } = await import("./journal_start.ts");
    return startJournal(config, base);
  },
};
