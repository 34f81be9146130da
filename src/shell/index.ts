// Shell pieces shared by several folders: the agent's ticker, the safe emitter, the drain loop, the
// shutdown stack, node:http without undici. Nothing protocol-wise.
export { createPrivateFile, fsyncDirectory, fsyncPath, writeFileAtomic } from "./atomic_file.ts";
export { DrainLoop, type ReadyCore, type ReadyHandler, readiesPerDrainMax } from "./drain_loop.ts";
export { SafeEmitter } from "./emitter.ts";
export { EventLog, type TandemEvent } from "./event_log.ts";
export { http } from "./node_http.ts";
export {
  type CommandOptions,
  type CommandOutcome,
  commandOutputBytesMax,
  commandSucceeded,
  runCommand,
} from "./run_command.ts";
export { readSecret, readSecretFrom, type SecretFrom } from "./secret.ts";
export { SeqRing } from "./seq_ring.ts";
export { ShutdownStack } from "./shutdown_stack.ts";
export {
  type MonotonicTicker,
  Ticker,
  type TickerOptions,
  type TickerTimers,
  type TickSubscriptionOptions,
} from "./ticker.ts";
