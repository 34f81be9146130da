// What a leader knows about its followers: the send tick of the latest heartbeat each voter acknowledged
// (the lease) and how long each has answered without a gap (health, for priority hand-over).
import { quorumValue } from "./quorum.ts";
import type { NodeId } from "./types.ts";

export interface LeaderLeaseOptions {
  selfId: NodeId;
  voters: readonly NodeId[];
  leaseTicks: number;
  /** A gap longer than this between acknowledged heartbeats breaks a voter's health streak. */
  streakGapTicksMax: number;
  /** Tick at which the winning vote requests were sent: votes granted date the first lease. */
  campaignTicks: number;
  grantedBy: Iterable<NodeId>;
}

export class LeaderLease {
  private readonly selfId: NodeId;
  private voters: readonly NodeId[];
  private readonly leaseTicks: number;
  private readonly streakGapTicksMax: number;
  /** Heartbeats still young enough to extend the lease: seq → send tick. Pruned on every send. */
  private readonly sendTicksBySeq = new Map<number, number>();
  private nextSeq = 1;
  private readonly ackedSendTicks = new Map<NodeId, number>();
  private readonly streakStartTicks = new Map<NodeId, number>();

  constructor(options: LeaderLeaseOptions) {
    this.selfId = options.selfId;
    this.voters = options.voters;
    this.leaseTicks = options.leaseTicks;
    this.streakGapTicksMax = options.streakGapTicksMax;
    for (const voter of options.grantedBy) {
      if (voter === this.selfId) continue;
      this.ackedSendTicks.set(voter, options.campaignTicks);
      this.streakStartTicks.set(voter, options.campaignTicks);
    }
  }

  /** Seq for a heartbeat sent now. */
  heartbeatSent(nowTicks: number): number {
    for (const [seq, sendTicks] of this.sendTicksBySeq) {
      if (sendTicks + this.leaseTicks <= nowTicks) this.sendTicksBySeq.delete(seq);
    }
    const seq = this.nextSeq++;
    this.sendTicksBySeq.set(seq, nowTicks);
    return seq;
  }

  /**
   * The leader changed its membership: the lease counts the new voters from now on. Acknowledgements from
   * learners were kept, so promoting a caught-up learner does not cost the lease.
   */
  setVoters(voters: readonly NodeId[]): void {
    this.voters = voters;
  }

  /** A node echoed `seq` (voter or learner); unknown or expired seqs change nothing. */
  acknowledged(voter: NodeId, seq: number): void {
    const sendTicks = this.sendTicksBySeq.get(seq);
    if (sendTicks === undefined || voter === this.selfId) return;
    const previous = this.ackedSendTicks.get(voter);
    if (previous !== undefined && sendTicks <= previous) return;
    if (previous === undefined || sendTicks - previous > this.streakGapTicksMax) {
      this.streakStartTicks.set(voter, sendTicks);
    }
    this.ackedSendTicks.set(voter, sendTicks);
  }

  /** First tick at which the lease no longer holds; self counts as acknowledging now. */
  expiresAtTicks(nowTicks: number): number {
    const sendTicks = this.voters.map((voter) =>
      voter === this.selfId ? nowTicks : (this.ackedSendTicks.get(voter) ?? Number.NEGATIVE_INFINITY),
    );
    return quorumValue(sendTicks) + this.leaseTicks;
  }

  /** Answered every heartbeat (gaps up to streakGapTicksMax) for at least `streakTicksMin`, until lately. */
  isHealthy(voter: NodeId, nowTicks: number, streakTicksMin: number): boolean {
    const acked = this.ackedSendTicks.get(voter);
    const start = this.streakStartTicks.get(voter);
    if (acked === undefined || start === undefined) return false;
    return nowTicks - acked <= this.streakGapTicksMax && acked - start >= streakTicksMin;
  }
}
