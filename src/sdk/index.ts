// The embeddable API (package export "tandem/embed"): Tandem's agent in a TypeScript app's own process.

export type { HandlerEntry, InProcessHandler, JournalEntry, RecordRequest } from "../journal/index.ts";
export { HandlerConflictError, JournalRecordError } from "../journal/index.ts";
export {
  type EmbeddedAgent,
  type EmbeddedAgentOptions,
  type EmbeddedJournal,
  startEmbeddedAgent,
} from "./embedded_agent.ts";
