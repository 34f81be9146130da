// The age v1 format (age-encryption.org/v1) for one X25519 key, with node:crypto: what the journal seals
// its batches with and opens them with. The files are standard age: the `age` CLI and age-encryption read
// what this writes, and this reads what they write to the key (test/unit/journal/age_native.test.ts).
//
// Why not age-encryption here (it stays for key generation and the blob stores): its files go through web
// streams, its ChaCha20-Poly1305, HKDF and HMAC are JavaScript and its X25519 is WebCrypto, whose every
// call is a job on libuv's thread pool awaited over a turn of the event loop. A journal batch is small and
// frequent (3 entries every few milliseconds at 1,000 entries/s): sealing one took ~1 ms of CPU and opening
// ~0.8, with several event-loop turns each, and both grew with a busy agent. node:crypto does each step
// natively and synchronously: ~0.4 ms a seal and ~0.3 an open here, no turn.
//
//   age-encryption.org/v1
//   -> X25519 <ephemeral share, base64>
//   <file key wrapped to the key, base64>
//   --- <HMAC-SHA-256 of the header up to "---", base64>
//   <16-byte nonce><ChaCha20-Poly1305 chunks of 64 KiB, the last one flagged>
import {
  createCipheriv,
  createDecipheriv,
  createHmac,
  createPrivateKey,
  createPublicKey,
  diffieHellman,
  generateKeyPairSync,
  hkdfSync,
  type KeyObject,
  randomBytes,
  timingSafeEqual,
} from "node:crypto";
import { bech32 } from "@scure/base";

/** Why a file could not be opened: not age, not for this key, or altered. */
export class AgeFormatError extends Error {
  override readonly name = "AgeFormatError";
}

const intro = "age-encryption.org/v1\n";
const x25519Label = "age-encryption.org/v1/X25519";
/** DER framing of a raw X25519 key (RFC 8410): these prefixes, then the 32 bytes. */
const pkcs8Prefix = Buffer.from("302e020100300506032b656e04220420", "hex");
const spkiPrefix = Buffer.from("302a300506032b656e032100", "hex");
const fileKeyBytes = 16;
const tagBytes = 16;
const nonceBytes = 16;
const chunkBytes = 64 * 1024;
/** The header's base64 lines are at most this long; a stanza's last body line is shorter. */
const columns = 64;
/** A header larger than this is not one of ours (one stanza is ~120 bytes): refused before parsing. */
const headerBytesMax = 64 * 1024;

function b64(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString("base64").replace(/=+$/, "");
}

/** Canonical unpadded base64 only: anything that does not encode back to itself is refused. */
function unb64(text: string): Buffer {
  const bytes = Buffer.from(text, "base64");
  if (!/^[A-Za-z0-9+/]*$/.test(text) || b64(bytes) !== text) throw new AgeFormatError("malformed base64");
  return bytes;
}

function hkdf(ikm: Uint8Array, salt: Uint8Array, info: string): Buffer {
  return Buffer.from(hkdfSync("sha256", ikm, salt, info, 32));
}

function rawPublicKey(key: KeyObject): Buffer {
  return key.export({ format: "der", type: "spki" }).subarray(spkiPrefix.length);
}

/** ChaCha20-Poly1305 of `plaintext`: the ciphertext, then the 16-byte tag. */
function seal(key: Uint8Array, nonce: Uint8Array, plaintext: Uint8Array): Buffer {
  const cipher = createCipheriv("chacha20-poly1305", key, nonce, { authTagLength: tagBytes });
  return Buffer.concat([cipher.update(plaintext), cipher.final(), cipher.getAuthTag()]);
}

/** The plaintext of what seal() made, or null when it does not authenticate. */
function open(key: Uint8Array, nonce: Uint8Array, sealed: Uint8Array): Buffer | null {
  if (sealed.length < tagBytes) return null;
  const decipher = createDecipheriv("chacha20-poly1305", key, nonce, { authTagLength: tagBytes });
  decipher.setAuthTag(sealed.subarray(sealed.length - tagBytes));
  try {
    return Buffer.concat([decipher.update(sealed.subarray(0, sealed.length - tagBytes)), decipher.final()]);
  } catch {
    return null;
  }
}

/** STREAM's nonce for chunk `index`: an 11-byte big-endian counter, then 1 for the last chunk. */
function chunkNonce(index: number, last: boolean): Buffer {
  const nonce = Buffer.alloc(12);
  nonce.writeUIntBE(index, 5, 6);
  nonce[11] = last ? 1 : 0;
  return nonce;
}

/** One X25519 age key (identity and recipient): seals files to it and opens files sealed to it. */
export class AgeX25519Key {
  /** The public half, age1... */
  readonly recipient: string;
  private readonly privateKey: KeyObject;
  private readonly publicKey: KeyObject;
  private readonly recipientBytes: Buffer;

  /** From an AGE-SECRET-KEY-1... identity (what `age-keygen` writes). */
  constructor(identity: string) {
    const decoded = bech32.decodeToBytes(identity);
    if (
      !identity.startsWith("AGE-SECRET-KEY-1") ||
      decoded.prefix.toUpperCase() !== "AGE-SECRET-KEY-" ||
      decoded.bytes.length !== 32
    ) {
      throw new AgeFormatError("not an age X25519 identity");
    }
    this.privateKey = createPrivateKey({
      key: Buffer.concat([pkcs8Prefix, decoded.bytes]),
      format: "der",
      type: "pkcs8",
    });
    this.publicKey = createPublicKey(this.privateKey);
    this.recipientBytes = rawPublicKey(this.publicKey);
    this.recipient = bech32.encodeFromBytes("age", this.recipientBytes);
  }

  /** An age file of `plaintext` for this key, with a fresh file key. */
  seal(plaintext: Uint8Array): Buffer {
    const fileKey = randomBytes(fileKeyBytes);
    const ephemeral = generateKeyPairSync("x25519");
    const share = rawPublicKey(ephemeral.publicKey);
    const wrapKey = hkdf(
      this.sharedSecret(ephemeral.privateKey, this.publicKey),
      Buffer.concat([share, this.recipientBytes]),
      x25519Label,
    );
    // A wrap key seals one file key only, so its nonce is zero (as the spec says).
    const body = seal(wrapKey, Buffer.alloc(12), fileKey);
    const header = `${intro}-> X25519 ${b64(share)}\n${b64(body)}\n---`;
    const mac = createHmac("sha256", hkdf(fileKey, Buffer.alloc(0), "header"))
      .update(header)
      .digest();
    const nonce = randomBytes(nonceBytes);
    const payloadKey = hkdf(fileKey, nonce, "payload");
    const parts: Buffer[] = [Buffer.from(`${header} ${b64(mac)}\n`), nonce];
    // Full chunks, then a last one: shorter, or empty only when the whole plaintext is.
    const chunks = Math.max(1, Math.ceil(plaintext.length / chunkBytes));
    for (let i = 0; i < chunks; i++) {
      const chunk = plaintext.subarray(i * chunkBytes, (i + 1) * chunkBytes);
      parts.push(seal(payloadKey, chunkNonce(i, i === chunks - 1), chunk));
    }
    return Buffer.concat(parts);
  }

  /** The plaintext of an age file sealed to this key; AgeFormatError for anything else or altered. */
  open(file: Uint8Array): Buffer {
    const { headerEnd, macAt, stanzas } = parseHeader(file);
    let fileKey: Buffer | null = null;
    for (const stanza of stanzas) {
      if (stanza.args[0] !== "X25519") continue;
      fileKey = this.unwrap(stanza);
      if (fileKey !== null) break;
    }
    if (fileKey === null) throw new AgeFormatError("no identity matched any of the recipients");
    const mac = unb64(Buffer.from(file.subarray(macAt, headerEnd - 1)).toString("latin1"));
    const expected = createHmac("sha256", hkdf(fileKey, Buffer.alloc(0), "header"))
      .update(file.subarray(0, macAt - 1))
      .digest();
    if (mac.length !== expected.length || !timingSafeEqual(mac, expected)) {
      throw new AgeFormatError("bad header MAC");
    }
    const nonce = file.subarray(headerEnd, headerEnd + nonceBytes);
    if (nonce.length !== nonceBytes) throw new AgeFormatError("truncated payload");
    const payloadKey = hkdf(fileKey, nonce, "payload");
    const payload = file.subarray(headerEnd + nonceBytes);
    const sealedChunk = chunkBytes + tagBytes;
    const chunks = Math.max(1, Math.ceil(payload.length / sealedChunk));
    const plain: Buffer[] = [];
    for (let i = 0; i < chunks; i++) {
      const last = i === chunks - 1;
      const sealed = payload.subarray(i * sealedChunk, (i + 1) * sealedChunk);
      const chunk = open(payloadKey, chunkNonce(i, last), sealed);
      // A last chunk must not be empty unless it is the only one (no trailing empty chunk).
      if (chunk === null || (last && chunk.length === 0 && i > 0)) {
        throw new AgeFormatError("payload altered or truncated");
      }
      plain.push(chunk);
    }
    return Buffer.concat(plain);
  }

  /** The file key of an X25519 stanza sealed to this key, or null (another key's, or altered). */
  private unwrap(stanza: Stanza): Buffer | null {
    const share = stanza.args.length === 2 ? unb64(stanza.args[1] as string) : null;
    if (share === null || share.length !== 32 || stanza.body.length !== fileKeyBytes + tagBytes) {
      throw new AgeFormatError("invalid X25519 stanza");
    }
    const peer = createPublicKey({ key: Buffer.concat([spkiPrefix, share]), format: "der", type: "spki" });
    const wrapKey = hkdf(
      this.sharedSecret(this.privateKey, peer),
      Buffer.concat([share, this.recipientBytes]),
      x25519Label,
    );
    return open(wrapKey, Buffer.alloc(12), stanza.body);
  }

  /** The X25519 shared secret; an all-zero one (a low-order share) is refused, as the spec requires. */
  private sharedSecret(privateKey: KeyObject, publicKey: KeyObject): Buffer {
    let secret: Buffer;
    try {
      secret = diffieHellman({ privateKey, publicKey });
    } catch {
      throw new AgeFormatError("invalid X25519 stanza");
    }
    if (secret.every((byte) => byte === 0)) throw new AgeFormatError("invalid X25519 stanza");
    return secret;
  }
}

interface Stanza {
  args: string[];
  body: Buffer;
}

/**
 * The header's stanzas, where its MAC starts and where the payload starts. Strict: the version line, then
 * stanzas ("-> " and arguments, then the body in base64 lines of 64 columns ended by a shorter one), then
 * "--- " and the MAC. Anything else is not an age file.
 */
function parseHeader(file: Uint8Array): { headerEnd: number; macAt: number; stanzas: Stanza[] } {
  const text = Buffer.from(file.subarray(0, headerBytesMax)).toString("latin1");
  if (!text.startsWith(intro)) throw new AgeFormatError("not an age file");
  const stanzas: Stanza[] = [];
  let at = intro.length;
  const line = (): string => {
    const end = text.indexOf("\n", at);
    if (end < 0) throw new AgeFormatError("truncated header");
    const read = text.slice(at, end);
    at = end + 1;
    return read;
  };
  for (;;) {
    const start = at;
    const next = line();
    if (next.startsWith("--- ")) {
      return { headerEnd: at, macAt: start + 4, stanzas };
    }
    const args = next.startsWith("-> ") ? next.slice(3).split(" ") : [];
    if (args.length === 0 || args.some((arg) => !/^[\x21-\x7e]+$/.test(arg))) {
      throw new AgeFormatError("malformed stanza");
    }
    let body = "";
    for (;;) {
      const bodyLine = line();
      if (bodyLine.length > columns) throw new AgeFormatError("malformed stanza body");
      body += bodyLine;
      if (bodyLine.length < columns) break;
    }
    stanzas.push({ args, body: unb64(body) });
  }
}
