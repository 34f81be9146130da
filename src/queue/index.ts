export { JOURNAL_CHANNEL, MeshTransport, type MeshTransportOptions, meshBatchMax } from "./mesh_queue.ts";
export type { JournalTransport, SealedOutboxMessage, TransportIo } from "./transport.ts";
