// Tandem's agent inside a TypeScript app's own process: the same composition as `tandem agent`
// (src/cli/agent.ts startAgent), with the app's better-sqlite3 database holding the journal's tables (so
// the app records in its own transactions: its change and the entry, both or neither) and the app's
// functions as handlers beside the config's. docs/journal.md, Embedding.
import type Database from "better-sqlite3";
import type { Logger } from "pino";
import { agentLogger, type RunningAgent, startAgent } from "../cli/index.ts";
import { loadConfig, type TandemConfig } from "../config/index.ts";
import type { InProcessHandler, JournalEntry, RecordRequest } from "../journal/index.ts";

export interface EmbeddedAgentOptions {
  /** The path of tandem.yml (as `tandem agent --config`), or a config loadConfig returned. */
  config: string | TandemConfig;
  /**
   * The app's database: the journal's tables go in it instead of journal.db. Open it with journal_mode =
   * WAL and synchronous = FULL for "recorded" to mean on disk; the app closes it after stop().
   */
  db?: Database.Database;
  /** Handlers by entry type ("*" for the rest), beside the config's journal.handlers; none in both. */
  handlers?: Readonly<Record<string, InProcessHandler>>;
  /** Default: the agent's JSON lines on stdout, as `tandem agent` logs. */
  logger?: Logger;
  /** As `tandem agent --join ADDRESS`. */
  join?: string;
}

export interface EmbeddedJournal {
  /**
   * Records an entry synchronously: inside `db.transaction(...)` it commits or rolls back with the app's
   * change; outside one, in a transaction of its own. Throws JournalRecordError for a refused entry.
   */
  record(request: RecordRequest): JournalEntry;
  /** As GET /api/v1/journal/status. */
  status(): Record<string, unknown>;
}

export interface EmbeddedAgent {
  /** This node's id (node.id of the config). */
  nodeId: string;
  agent: RunningAgent;
  journal: EmbeddedJournal;
  /** Stops the agent (the app's database stays open). */
  stop(): Promise<void>;
}

export async function startEmbeddedAgent(options: EmbeddedAgentOptions): Promise<EmbeddedAgent> {
  const config = typeof options.config === "string" ? loaded(options.config) : options.config;
  const logger = options.logger ?? agentLogger(config);
  const embedding = {
    ...(options.db === undefined ? {} : { db: options.db }),
    ...(options.handlers === undefined ? {} : { handlers: options.handlers }),
  };
  const agent = await startAgent(config, logger, {
    ...(options.join === undefined ? {} : { join: options.join }),
    ...(options.db === undefined && options.handlers === undefined ? {} : { journal: embedding }),
  });
  const recorder = agent.provided.journal;
  if (recorder === undefined) {
    await agent.stop();
    throw new Error("the config has no journal: section: an embedded app records through the journal");
  }
  return {
    nodeId: config.node.id,
    agent,
    journal: {
      record: (request) => recorder.recordNow(request),
      status: () => recorder.status(),
    },
    stop: () => agent.stop(),
  };
}

function loaded(path: string): TandemConfig {
  const result = loadConfig(path);
  if (!result.ok) throw new Error(result.error.format());
  return result.value;
}
