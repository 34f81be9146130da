// Command name -> handler, one file per command (handle_<command>.ts), as in etcd's rafttest.
import type { Command } from "./command.ts";
import type { InteractionEnv } from "./env.ts";
import { handleAddNodes } from "./handle_add_nodes.ts";
import { handleCampaign } from "./handle_campaign.ts";
import { handleCrash, handleRestart } from "./handle_crash.ts";
import { handleDeliver } from "./handle_deliver.ts";
import { handleDisconnect } from "./handle_disconnect.ts";
import { handleMembers } from "./handle_members.ts";
import { handleHeal, handlePartition } from "./handle_partition.ts";
import { handlePropose } from "./handle_propose.ts";
import { handleStabilize } from "./handle_stabilize.ts";
import { handleStatus } from "./handle_status.ts";
import { handleTick } from "./handle_tick.ts";
import { handleTransfer } from "./handle_transfer.ts";

export type Handler = (env: InteractionEnv, command: Command) => void;

export const handlers: Readonly<Record<string, Handler>> = {
  "add-nodes": handleAddNodes,
  tick: handleTick,
  campaign: handleCampaign,
  transfer: handleTransfer,
  deliver: handleDeliver,
  stabilize: handleStabilize,
  partition: handlePartition,
  heal: handleHeal,
  crash: handleCrash,
  restart: handleRestart,
  disconnect: handleDisconnect,
  status: handleStatus,
  propose: handlePropose,
  members: handleMembers,
};
