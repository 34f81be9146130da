// The last table's owners and drained nodes, kept in the data directory (services.json): a leader elected
// after a restart of the whole cluster starts from them, so drains outlive it and services are adopted
// where they ran. Written only when owners, drains or the term change, not at every report.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { Logger } from "pino";
import { z } from "zod";
import type { NodeId } from "../core/types.ts";
import { writeFileAtomic } from "../shell/index.ts";
import type { ServiceTableEntry } from "./services_wire.ts";

const SERVICES_STATE_FILE = "services.json";

const savedSchema = z.strictObject({
  term: z.number().int().min(0),
  owners: z.record(z.string(), z.string().nullable()),
  drained: z.array(z.string()),
});
type Saved = z.infer<typeof savedSchema>;

export class SavedTable {
  private readonly path: string | null;
  private readonly logger: Logger;
  private saved: Saved;
  private savedText: string;

  /** `dataDir` null keeps nothing (tests). */
  constructor(dataDir: string | null, logger: Logger) {
    this.path = dataDir === null ? null : join(dataDir, SERVICES_STATE_FILE);
    this.logger = logger;
    this.saved = this.load();
    this.savedText = JSON.stringify(this.saved);
  }

  /** The saved owners as table entries (no reports: only a hint of where each ran). */
  services(): Record<string, ServiceTableEntry> {
    const table: Record<string, ServiceTableEntry> = {};
    for (const [name, owner] of Object.entries(this.saved.owners)) {
      table[name] = {
        owner,
        code: "saved",
        reason: "from the last table before a restart",
        report: null,
        failbackIn: null,
      };
    }
    return table;
  }

  drained(): NodeId[] {
    return this.saved.drained;
  }

  save(table: { term: number; services: Record<string, ServiceTableEntry>; drained: NodeId[] }): void {
    if (this.path === null) return;
    const owners: Record<string, string | null> = {};
    for (const [name, entry] of Object.entries(table.services)) owners[name] = entry.owner;
    const state: Saved = { term: table.term, owners, drained: table.drained };
    const text = JSON.stringify(state);
    if (text === this.savedText) return;
    try {
      writeFileAtomic(this.path, text, 0o600);
      this.saved = state;
      this.savedText = text;
    } catch (error) {
      this.logger.warn({ err: error, path: this.path }, "cannot save the services table");
    }
  }

  private load(): Saved {
    const empty: Saved = { term: 0, owners: {}, drained: [] };
    if (this.path === null) return empty;
    let text: string;
    try {
      text = readFileSync(this.path, "utf8");
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "ENOENT") {
        this.logger.warn({ err: error, path: this.path }, "cannot read the services table");
      }
      return empty;
    }
    try {
      return savedSchema.parse(JSON.parse(text));
    } catch (error) {
      // Only a hint for a new leader: without it, owners come from what the nodes report.
      this.logger.warn({ err: error, path: this.path }, "ignoring a malformed services table file");
      return empty;
    }
  }
}
