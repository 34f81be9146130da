// The cluster's replication key: one age X25519 identity that every node holds in a file (like the CA of
// mtls mode, copied by the operator), so each entry's payload is sealed to its recipient and any node can
// open it. The file is what `age-keygen` writes (comment lines, then the secret), so the standard `age`
// CLI decrypts an exported entry with it. X25519 rather than age's newer post-quantum identities: the age
// of Debian 12 (1.1) reads only these. Sealing and opening are age_native.ts's (node:crypto); the library
// makes new keys.
import { readFile } from "node:fs/promises";
import { generateX25519Identity, identityToRecipient } from "age-encryption";
import { AgeFormatError, AgeX25519Key } from "./age_native.ts";

const identityPattern = /^AGE-SECRET-KEY-1[0-9A-Z]+$/;

export class JournalKeyError extends Error {
  override readonly name = "JournalKeyError";
}

/** Why a payload could not be opened: not age at all, or sealed to another key, or altered. */
export class SealedPayloadError extends Error {
  override readonly name = "SealedPayloadError";
}

export class JournalKey {
  /** The key parsed once (its public half costs a scalar multiplication); seals and opens with node:crypto. */
  private readonly key: AgeX25519Key;

  private constructor(identity: string) {
    this.key = new AgeX25519Key(identity);
  }

  /** The public half, age1...: what a payload is sealed to. */
  get recipient(): string {
    return this.key.recipient;
  }

  /** A new key, and the text of its file (what `age-keygen` writes). */
  static async generate(now = new Date()): Promise<{ key: JournalKey; fileText: string }> {
    const identity = await generateX25519Identity();
    const key = new JournalKey(identity);
    const fileText = `# created: ${now.toISOString()}\n# public key: ${key.recipient}\n${identity}\n`;
    return { key, fileText };
  }

  /** Reads a key file (see readAgeKeyFile). */
  static async load(path: string): Promise<JournalKey> {
    const { identity } = await readAgeKeyFile(path);
    return new JournalKey(identity);
  }

  /** Seals `plaintext` to this key (age's binary format: authenticated, a fresh file key each time). */
  async seal(plaintext: Uint8Array): Promise<Uint8Array> {
    return asUint8Array(this.key.seal(plaintext));
  }

  /** Opens what seal() made with this key; SealedPayloadError for anything else. */
  async open(sealed: Uint8Array): Promise<Uint8Array> {
    try {
      return asUint8Array(this.key.open(sealed));
    } catch (error) {
      if (error instanceof AgeFormatError) throw new SealedPayloadError(`refused: ${error.message}`);
      throw error;
    }
  }
}

/** The same bytes as a plain Uint8Array (what the journal's callers and their tests compare). */
function asUint8Array(buffer: Buffer): Uint8Array {
  return new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.length);
}

/**
 * Reads an age key file: comment lines (#) and blank lines, then exactly one X25519 identity; gives the
 * identity and its public half. The blob stores encrypt to the same key.
 */
export async function readAgeKeyFile(path: string): Promise<{ identity: string; recipient: string }> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (error) {
    throw new JournalKeyError(`cannot read the age key file ${path}: ${(error as Error).message}`);
  }
  const lines = text
    .split(/\r?\n/)
    .map((line) => line.trim())
    .filter((line) => line !== "" && !line.startsWith("#"));
  const identity = lines[0];
  // The secret itself never goes into a message: only where it was and what was wrong.
  if (lines.length !== 1 || identity === undefined || !identityPattern.test(identity)) {
    throw new JournalKeyError(
      `${path} is not an age X25519 key file (one AGE-SECRET-KEY-1... line; make one with \`tandem journal keygen\`)`,
    );
  }
  return { identity, recipient: await identityToRecipient(identity) };
}
