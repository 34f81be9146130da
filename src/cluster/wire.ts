// Election messages on the mesh channel "election", in a fixed binary layout checked field by field before
// the core sees them: the leader's heartbeats and their answers are most of an idle cluster's traffic, and a
// JSON parse plus a schema walk per message was a tenth of an idle agent's CPU (bench/idle.ts).
//
// Layout (big-endian): u8 type | f64 term, then per type
//   timeout-now                                  nothing more
//   pre-vote                                     summary
//   pre-vote-response, vote-response, vote       u8 flag (granted / transfer) | summary
//   vote-response with contacts                  as vote-response | u8 has | f64 heard ms ago | f64 tail
//   heartbeat-response                           f64 seq | summary
//   heartbeat                                    f64 seq | summary | f64 committed | u32 n | n bytes
//                                                | u16 v | v bytes [| f64 tail]
// where summary = f64 membership version | f64 membership term | 8 bytes membership hash, numbers are
// non-negative safe integers, the heartbeat's n bytes (n = 0: none) are the whole membership as JSON,
// sent only to a node that does not hold it yet, and schema-checked here, and its v bytes are the ids of
// the peers the sender heard lately, comma-separated (v = 0: none): the leader vouches for them to the
// followers' failure detectors (see HealthRunner.heardLately), which the election core never sees. The
// optional tail (a heartbeat's grantTailMs) and a vote's contacts (bit 0 of `has`: leaderHeardMsAgo, bit 1:
// grantTailMs; an absent one is 0; no contacts: the short form) are new: messages without them, from older
// peers, still decode, and their votes count as votes without contacts. Every other type has one length;
// anything else is refused, so an accepted payload re-encodes to the same bytes.
import type { ElectionMessage, Membership, MembershipSummary } from "../core/election_types.ts";
import { type NodeId, nodeIdPattern } from "../core/types.ts";
import { checkMembership } from "./membership_schema.ts";
import { readUint, writeUint } from "./wire_numbers.ts";

export const ELECTION_CHANNEL = "election";

const typeCodes = {
  "pre-vote": 1,
  "pre-vote-response": 2,
  vote: 3,
  "vote-response": 4,
  heartbeat: 5,
  "heartbeat-response": 6,
  "timeout-now": 7,
} as const satisfies Record<ElectionMessage["type"], number>;

/** Where the summary starts, per type code (index); -1 for none. */
const summaryAtByCode = [-1, 9, 10, 10, 10, 17, 17, -1];
/** Fixed length per type code (index); a heartbeat adds its membership and vouch bytes. 0 for unknown codes. */
const lengthByCode = [0, 33, 34, 34, 34, 55, 41, 9];
/** A vote-response with contacts: the short form plus `has` and two numbers. */
const voteResponseContactsLength = 34 + 1 + 16;
/** A heartbeat's optional tail after its vouch bytes. */
const heartbeatTailBytes = 8;
/** Where a heartbeat's membership bytes start (after their u32 length). */
const heartbeatConfigAt = 53;

/** A membership list on the wire: at most this many bytes (about 2,000 nodes). */
export const membershipBytesMax = 256 * 1024;

const noBytes = Buffer.alloc(0);
/** A heartbeat's vouch field: at most this many bytes (its u16 length). */
const vouchBytesMax = 0xffff;

/** The vouch bytes of a heartbeat: made once per round of heartbeats, not once per recipient. */
export function encodeVouchedPeers(peers: readonly NodeId[]): Uint8Array {
  const bytes = Buffer.from(peers.join(","));
  if (bytes.byteLength > vouchBytesMax)
    throw new RangeError(`${peers.length} vouched peers exceed the field`);
  return bytes;
}

/** `vouchedPeers` (from encodeVouchedPeers) goes into a heartbeat only; other types carry none. */
export function encodeElectionMessage(
  message: ElectionMessage,
  vouchedPeers: Uint8Array = noBytes,
): Uint8Array {
  const code = typeCodes[message.type];
  const config =
    message.type === "heartbeat" && message.config !== undefined
      ? Buffer.from(JSON.stringify(message.config))
      : null;
  const vouches = message.type === "heartbeat" ? vouchedPeers : noBytes;
  const tail = message.type === "heartbeat" && message.grantTailMs !== undefined ? heartbeatTailBytes : 0;
  const contacts =
    message.type === "vote-response" &&
    (message.leaderHeardMsAgo !== undefined || message.grantTailMs !== undefined);
  const length = contacts ? voteResponseContactsLength : (lengthByCode[code] as number);
  const bytes = Buffer.allocUnsafe(length + (config?.byteLength ?? 0) + vouches.byteLength + tail);
  bytes[0] = code;
  writeUint(bytes, 1, message.term);
  switch (message.type) {
    case "pre-vote-response":
    case "vote-response":
      bytes[9] = message.granted ? 1 : 0;
      break;
    case "vote":
      bytes[9] = message.transfer ? 1 : 0;
      break;
    case "heartbeat":
    case "heartbeat-response":
      writeUint(bytes, 9, message.seq);
      break;
    case "pre-vote":
    case "timeout-now":
      break;
    default:
      throw new RangeError(`unknown election message ${(message satisfies never as ElectionMessage).type}`);
  }
  if (message.type !== "timeout-now")
    writeSummary(bytes, summaryAtByCode[code] as number, message.membership);
  if (message.type === "heartbeat") {
    writeUint(bytes, 41, message.committed);
    const configBytes = config?.byteLength ?? 0;
    bytes.writeUInt32BE(configBytes, 49);
    config?.copy(bytes, heartbeatConfigAt);
    bytes.writeUInt16BE(vouches.byteLength, heartbeatConfigAt + configBytes);
    bytes.set(vouches, heartbeatConfigAt + configBytes + 2);
    if (message.grantTailMs !== undefined) {
      writeUint(bytes, heartbeatConfigAt + configBytes + 2 + vouches.byteLength, message.grantTailMs);
    }
  }
  if (contacts && message.type === "vote-response") {
    const heard = message.leaderHeardMsAgo;
    const tailMs = message.grantTailMs;
    bytes[34] = (heard === undefined ? 0 : 1) | (tailMs === undefined ? 0 : 2);
    writeUint(bytes, 35, heard ?? 0);
    writeUint(bytes, 43, tailMs ?? 0);
  }
  return bytes;
}

function writeSummary(bytes: Buffer, at: number, summary: MembershipSummary): void {
  writeUint(bytes, at, summary.version);
  writeUint(bytes, at + 8, summary.term);
  if (!/^[0-9a-f]{16}$/.test(summary.hash)) throw new RangeError(`not a membership hash: ${summary.hash}`);
  bytes.write(summary.hash, at + 16, "hex");
}

/** `vouchedPeers`: what a heartbeat vouches for ([] for every other type). */
export type DecodeResult =
  | { ok: true; message: ElectionMessage; vouchedPeers: readonly NodeId[] }
  | { ok: false; reason: string };

const noPeers: readonly NodeId[] = Object.freeze([]);

function accept(message: ElectionMessage): DecodeResult {
  return { ok: true, message, vouchedPeers: noPeers };
}

/** Never throws: hostile bytes from a peer become a reason to log. */
export function decodeElectionMessage(payload: Uint8Array): DecodeResult {
  const code = payload.byteLength > 0 ? (payload[0] as number) : 0;
  const length = lengthByCode[code] ?? 0;
  if (length === 0) return refuse(`unknown type ${code}`);
  const fixedLength =
    code === typeCodes.heartbeat
      ? payload.byteLength >= length
      : payload.byteLength === length ||
        (code === typeCodes["vote-response"] && payload.byteLength === voteResponseContactsLength);
  if (!fixedLength) return refuse(`${payload.byteLength} bytes, type ${code} takes ${length}`);
  const term = readUint(payload, 1);
  if (term < 0) return refuse("term is not a non-negative integer");
  if (code === typeCodes["timeout-now"]) return accept({ type: "timeout-now", term });
  const membership = readSummary(payload, summaryAtByCode[code] as number);
  if (membership === null) return refuse("membership summary is not two non-negative integers");
  switch (code) {
    case typeCodes["pre-vote"]:
      return accept({ type: "pre-vote", term, membership });
    case typeCodes["pre-vote-response"]:
    case typeCodes["vote-response"]:
    case typeCodes.vote: {
      const flag = payload[9];
      if (flag !== 0 && flag !== 1) return refuse(`flag byte ${flag} is not 0 or 1`);
      if (code === typeCodes.vote) {
        return accept({ type: "vote", term, transfer: flag === 1, membership });
      }
      if (code === typeCodes["vote-response"] && payload.byteLength === voteResponseContactsLength) {
        return decodeVoteContacts(payload, { type: "vote-response", term, granted: flag === 1, membership });
      }
      const type = code === typeCodes["vote-response"] ? "vote-response" : "pre-vote-response";
      return accept({ type, term, granted: flag === 1, membership });
    }
    default: {
      const seq = readUint(payload, 9);
      if (seq < 0) return refuse("seq is not a non-negative integer");
      if (code === typeCodes["heartbeat-response"]) {
        return accept({ type: "heartbeat-response", term, seq, membership });
      }
      return decodeHeartbeat(payload, term, seq, membership);
    }
  }
}

function decodeVoteContacts(
  payload: Uint8Array,
  vote: Extract<ElectionMessage, { type: "vote-response" }>,
): DecodeResult {
  const has = payload[34] as number;
  if (has === 0 || has > 3) return refuse(`contacts flags ${has}`);
  const heard = readUint(payload, 35);
  const tailMs = readUint(payload, 43);
  if (heard < 0 || tailMs < 0) return refuse("contacts are not non-negative integers");
  if (((has & 1) === 0 && heard !== 0) || ((has & 2) === 0 && tailMs !== 0)) {
    return refuse("an absent contact is not 0");
  }
  return accept({
    ...vote,
    ...((has & 1) === 1 ? { leaderHeardMsAgo: heard } : {}),
    ...((has & 2) === 2 ? { grantTailMs: tailMs } : {}),
  });
}

function decodeHeartbeat(
  payload: Uint8Array,
  term: number,
  seq: number,
  membership: MembershipSummary,
): DecodeResult {
  const committed = readUint(payload, 41);
  if (committed < 0) return refuse("committed is not a non-negative integer");
  const view = Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength);
  const configBytes = view.readUInt32BE(49);
  const vouchesAt = heartbeatConfigAt + configBytes + 2;
  if (payload.byteLength < vouchesAt) {
    return refuse(`heartbeat of ${payload.byteLength} bytes announces ${configBytes} membership bytes`);
  }
  const vouchBytes = view.readUInt16BE(vouchesAt - 2);
  const tailAt = vouchesAt + vouchBytes;
  if (payload.byteLength !== tailAt && payload.byteLength !== tailAt + heartbeatTailBytes) {
    return refuse(`heartbeat of ${payload.byteLength} bytes announces ${vouchBytes} vouch bytes`);
  }
  const vouchedPeers =
    vouchBytes === 0 ? noPeers : parseVouchedPeers(view.subarray(vouchesAt, vouchesAt + vouchBytes));
  if (vouchedPeers === null) return refuse("vouched peers are not a list of node ids");
  const tailMs = payload.byteLength === tailAt ? -1 : readUint(payload, tailAt);
  if (payload.byteLength !== tailAt && tailMs < 0) return refuse("tail is not a non-negative integer");
  const heartbeat = {
    type: "heartbeat" as const,
    term,
    seq,
    membership,
    committed,
    ...(tailMs < 0 ? {} : { grantTailMs: tailMs }),
  };
  if (configBytes === 0) return { ok: true, message: heartbeat, vouchedPeers };
  if (configBytes > membershipBytesMax) return refuse(`membership of ${configBytes} bytes`);
  const config = parseMembership(view.subarray(heartbeatConfigAt, heartbeatConfigAt + configBytes));
  if (config === null) return refuse("membership is not a valid list");
  return { ok: true, message: { ...heartbeat, config }, vouchedPeers };
}

function parseVouchedPeers(bytes: Buffer): NodeId[] | null {
  const peers = bytes.toString("latin1").split(",");
  return peers.every((peer) => nodeIdPattern.test(peer)) ? peers : null;
}

function parseMembership(bytes: Buffer): Membership | null {
  let parsed: unknown;
  try {
    parsed = JSON.parse(bytes.toString("utf8"));
  } catch {
    return null;
  }
  const checked = checkMembership(parsed);
  return checked.ok ? checked.membership : null;
}

function readSummary(payload: Uint8Array, at: number): MembershipSummary | null {
  const version = readUint(payload, at);
  const term = readUint(payload, at + 8);
  if (version < 0 || term < 0) return null;
  const hash = Buffer.from(payload.buffer, payload.byteOffset + at + 16, 8).toString("hex");
  return { version, term, hash };
}

function refuse(reason: string): DecodeResult {
  return { ok: false, reason: `invalid election message: ${reason}` };
}
