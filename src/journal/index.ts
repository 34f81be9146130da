export { JournalApplier } from "./applier.ts";
export {
  batchesCappedByConcurrency,
  combineHandlers,
  entryHandler,
  HandlerConflictError,
  type HandlerEntry,
  type HandlerResult,
  handlerFor,
  handlerPayload,
  type InProcessHandler,
} from "./entry_handlers.ts";
export { type DeadLetter, JournalDb, type JournalEntry, JournalOpenError } from "./journal_db.ts";
export { JournalKey, JournalKeyError, readAgeKeyFile, SealedPayloadError } from "./journal_key.ts";
export {
  entryDataBytesMax,
  JournalNode,
  JournalRecordError,
  outboxPruneEveryMs,
  type RecordManyOutcome,
  type RecordRequest,
  recordBatchMax,
  recordProblem,
} from "./journal_node.ts";
export { batchEntriesMax, openBatch, readHeader, sealBatch } from "./journal_wire.ts";
export type { PostStep } from "./post_steps.ts";
