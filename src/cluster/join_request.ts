// `tandem agent --join ADDRESS`: a node with no membership asks the member at ADDRESS (whose id it does not
// know) to add it as a learner; the member forwards the change to the leader. Retried with back-off until
// the cluster has answered, since the member may be restarting or the cluster between leaders; the node
// then waits for the leader's heartbeat, which carries the list that names it.
import type { Logger } from "pino";
import type { MemberRole } from "../core/membership.ts";
import { decodeJsonPayload, encodeJsonPayload, type MeshApi } from "../mesh/index.ts";
import { changeOutcomeSchema, MEMBERSHIP_CHANNEL, type MembershipRequest } from "./membership_wire.ts";

export interface JoinRequestOptions {
  mesh: Pick<MeshApi, "requestAt">;
  /** host:port of any current member. */
  target: string;
  /** What this node asks to be listed as. */
  self: { address: string; role: MemberRole; priority: number };
  logger: Logger;
  /** Whether this node still needs to ask (false once it holds a membership). */
  stillJoining: () => boolean;
}

const retryDelayMsMin = 1_000;
const retryDelayMsMax = 15_000;
/** The member forwards to the leader, which waits for a quorum: allow for both. */
const requestTimeoutMs = 20_000;

/** Starts asking; the returned function stops it. */
export function requestJoin(options: JoinRequestOptions): () => void {
  let stopped = false;
  let timer: NodeJS.Timeout | null = null;
  let delayMs = retryDelayMsMin;
  const { logger, target } = options;
  const attempt = async () => {
    timer = null;
    if (stopped || !options.stillJoining()) return;
    const request: MembershipRequest = { kind: "join", ...options.self };
    try {
      const { peer, response } = await options.mesh.requestAt(
        target,
        MEMBERSHIP_CHANNEL,
        encodeJsonPayload(request),
        { timeoutMs: requestTimeoutMs },
      );
      const outcome = decodeJsonPayload(response, changeOutcomeSchema);
      if (!outcome.ok) throw new Error(`unreadable answer from ${peer}: ${outcome.reason}`);
      if (outcome.value.ok) {
        logger.info(
          { via: peer, version: outcome.value.version },
          "added to the cluster as a learner: catching up, then promoted to voter by the leader",
        );
        return;
      }
      if (outcome.value.refusal === "refused" && /already in the membership/.test(outcome.value.reason)) {
        logger.info({ via: peer }, "already in the cluster's membership: waiting for the leader");
        return;
      }
      logger.warn(
        { via: peer, refusal: outcome.value.refusal, reason: outcome.value.reason },
        "join not made yet",
      );
    } catch (error) {
      logger.warn({ target, reason: (error as Error).message }, "join request failed; retrying");
    }
    if (stopped) return;
    timer = setTimeout(() => void attempt(), delayMs);
    delayMs = Math.min(retryDelayMsMax, delayMs * 2);
  };
  void attempt();
  return () => {
    stopped = true;
    if (timer !== null) clearTimeout(timer);
  };
}
