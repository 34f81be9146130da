// Election messages on the mesh channel "election", in a fixed binary layout checked field by field before
// the core sees them: the leader's heartbeats and their answers are most of an idle cluster's traffic, and a
// JSON parse plus a schema walk per message was a tenth of an idle agent's CPU (bench/idle.ts).
//
// Layout (big-endian): u8 type | f64 term, then per type
//   pre-vote, timeout-now                        nothing
//   pre-vote-response, vote-response             u8 granted (0 or 1)
//   vote                                         u8 transfer (0 or 1)
//   heartbeat, heartbeat-response                f64 seq
// where term and seq are non-negative safe integers. Every type has one length; anything else is refused,
// so an accepted payload re-encodes to the same bytes.
import type { ElectionMessage } from "../core/election_types.ts";
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

/** Payload bytes per type code (index); 0 for unknown codes. */
const lengthByCode = [0, 9, 10, 10, 10, 17, 17, 9];

export function encodeElectionMessage(message: ElectionMessage): Uint8Array {
  const code = typeCodes[message.type];
  const bytes = Buffer.allocUnsafe(lengthByCode[code] as number);
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
  return bytes;
}

export type DecodeResult = { ok: true; message: ElectionMessage } | { ok: false; reason: string };

/** The longest election message; anything larger is garbage. */
export const electionMessageBytesMax = 17;

/** Never throws: hostile bytes from a peer become a reason to log. */
export function decodeElectionMessage(payload: Uint8Array): DecodeResult {
  const code = payload.byteLength > 0 ? (payload[0] as number) : 0;
  const length = lengthByCode[code] ?? 0;
  if (length === 0) return refuse(`unknown type ${code}`);
  if (payload.byteLength !== length)
    return refuse(`${payload.byteLength} bytes, type ${code} takes ${length}`);
  const term = readUint(payload, 1);
  if (term < 0) return refuse("term is not a non-negative integer");
  switch (code) {
    case typeCodes["pre-vote"]:
      return { ok: true, message: { type: "pre-vote", term } };
    case typeCodes["timeout-now"]:
      return { ok: true, message: { type: "timeout-now", term } };
    case typeCodes["pre-vote-response"]:
    case typeCodes["vote-response"]:
    case typeCodes.vote: {
      const flag = payload[9];
      if (flag !== 0 && flag !== 1) return refuse(`flag byte ${flag} is not 0 or 1`);
      if (code === typeCodes.vote) return { ok: true, message: { type: "vote", term, transfer: flag === 1 } };
      const type = code === typeCodes["vote-response"] ? "vote-response" : "pre-vote-response";
      return { ok: true, message: { type, term, granted: flag === 1 } };
    }
    default: {
      const seq = readUint(payload, 9);
      if (seq < 0) return refuse("seq is not a non-negative integer");
      const type = code === typeCodes.heartbeat ? "heartbeat" : "heartbeat-response";
      return { ok: true, message: { type, term, seq } };
    }
  }
}

function refuse(reason: string): DecodeResult {
  return { ok: false, reason: `invalid election message: ${reason}` };
}
