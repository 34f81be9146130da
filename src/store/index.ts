// The replicated store's public surface.
export { MaterialiseFeed } from "./materialise_feed.ts";
export { MaterialiseError, Materialiser, type MaterialiserOptions } from "./materialiser.ts";
export { renewStoreIdentity } from "./renew_identity.ts";
export { Replicator, type ReplicatorOptions } from "./replicator.ts";
export { SqliteLocalStore, StoreOpenError } from "./sqlite_store.ts";
export { STORE_APPLY_CHANNEL, STORE_SYNC_CHANNEL } from "./store_wire.ts";
export * from "./types.ts";
export { StoreFlushError } from "./wal_flusher.ts";
