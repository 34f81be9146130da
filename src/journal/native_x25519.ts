// age's X25519 stanza (age-encryption.org/v1, "the X25519 recipient type") computed with node:crypto, as the
// Recipient and Identity that age-encryption's Encrypter and Decrypter take: the library still writes and
// reads the whole age file (header, MAC, payload), and the stanza is byte for byte what its own X25519
// recipient makes. Why our own: the library's goes through WebCrypto, importing the keys again for every
// file and awaiting each scalar multiplication on libuv's thread pool, so every seal and open of a journal
// batch waited for two or three turns of the event loop (on a busy agent, several milliseconds each) and
// cost ~1 ms of CPU for a batch of 3 entries. node:crypto does the same X25519 natively, at once.
import {
  createCipheriv,
  createDecipheriv,
  createPrivateKey,
  createPublicKey,
  diffieHellman,
  generateKeyPairSync,
  hkdfSync,
  type KeyObject,
} from "node:crypto";
import { base64nopad, bech32 } from "@scure/base";
import { type Identity, type Recipient, Stanza } from "age-encryption";

const label = "age-encryption.org/v1/X25519";
/** DER framing of a raw X25519 key (RFC 8410): these prefixes, then the 32 bytes. */
const pkcs8Prefix = Buffer.from("302e020100300506032b656e04220420", "hex");
const spkiPrefix = Buffer.from("302a300506032b656e032100", "hex");
/** Each wrap key seals one file key only, so the nonce is zero (as the spec says). */
const zeroNonce = Buffer.alloc(12);
const fileKeyBytes = 16;
const tagBytes = 16;

function publicKeyOf(raw: Uint8Array): KeyObject {
  return createPublicKey({ key: Buffer.concat([spkiPrefix, raw]), format: "der", type: "spki" });
}

function rawPublicKey(key: KeyObject): Buffer {
  return key.export({ format: "der", type: "spki" }).subarray(spkiPrefix.length);
}

/** The X25519 shared secret; an all-zero one (a low-order share) is refused, as the spec requires. */
function sharedSecret(privateKey: KeyObject, publicKey: KeyObject): Buffer {
  const secret = diffieHellman({ privateKey, publicKey });
  if (secret.every((byte) => byte === 0)) throw new Error("invalid X25519 stanza");
  return secret;
}

function wrapKey(secret: Buffer, share: Uint8Array, recipient: Uint8Array): Buffer {
  return Buffer.from(hkdfSync("sha256", secret, Buffer.concat([share, recipient]), label, 32));
}

/** Seals each file key to one age1... recipient. */
export class NativeX25519Recipient implements Recipient {
  private readonly recipient: Uint8Array;
  private readonly publicKey: KeyObject;

  constructor(recipient: string) {
    const decoded = bech32.decodeToBytes(recipient);
    if (!recipient.startsWith("age1") || decoded.prefix !== "age" || decoded.bytes.length !== 32) {
      throw new Error("invalid recipient");
    }
    this.recipient = decoded.bytes;
    this.publicKey = publicKeyOf(decoded.bytes);
  }

  wrapFileKey(fileKey: Uint8Array): Stanza[] {
    const ephemeral = generateKeyPairSync("x25519");
    const share = rawPublicKey(ephemeral.publicKey);
    const secret = sharedSecret(ephemeral.privateKey, this.publicKey);
    const cipher = createCipheriv("chacha20-poly1305", wrapKey(secret, share, this.recipient), zeroNonce, {
      authTagLength: tagBytes,
    });
    const body = Buffer.concat([cipher.update(fileKey), cipher.final(), cipher.getAuthTag()]);
    return [new Stanza(["X25519", base64nopad.encode(share)], body)];
  }
}

/** Opens the file key of a file sealed to the AGE-SECRET-KEY-1... identity's recipient. */
export class NativeX25519Identity implements Identity {
  private readonly privateKey: KeyObject;
  private readonly recipient: Uint8Array;

  constructor(identity: string) {
    const decoded = bech32.decodeToBytes(identity);
    if (
      !identity.startsWith("AGE-SECRET-KEY-1") ||
      decoded.prefix.toUpperCase() !== "AGE-SECRET-KEY-" ||
      decoded.bytes.length !== 32
    ) {
      throw new Error("invalid identity");
    }
    this.privateKey = createPrivateKey({
      key: Buffer.concat([pkcs8Prefix, decoded.bytes]),
      format: "der",
      type: "pkcs8",
    });
    this.recipient = rawPublicKey(createPublicKey(this.privateKey));
  }

  /**
   * The file key from the first X25519 stanza that opens with this identity; null when none does (another
   * key's file). A malformed X25519 stanza throws, as the library's identity does.
   */
  unwrapFileKey(stanzas: Stanza[]): Uint8Array | null {
    for (const stanza of stanzas) {
      if (stanza.args[0] !== "X25519") continue;
      const share = stanza.args.length === 2 ? base64nopad.decode(stanza.args[1] as string) : null;
      if (share === null || share.length !== 32 || stanza.body.length !== fileKeyBytes + tagBytes) {
        throw new Error("invalid X25519 stanza");
      }
      const secret = sharedSecret(this.privateKey, publicKeyOf(share));
      const decipher = createDecipheriv(
        "chacha20-poly1305",
        wrapKey(secret, share, this.recipient),
        zeroNonce,
        { authTagLength: tagBytes },
      );
      decipher.setAuthTag(stanza.body.subarray(fileKeyBytes));
      try {
        return Buffer.concat([decipher.update(stanza.body.subarray(0, fileKeyBytes)), decipher.final()]);
      } catch {
        // Sealed to another key (or altered): try the next stanza.
      }
    }
    return null;
  }
}
