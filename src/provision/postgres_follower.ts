// The follower role on the primary: LOGIN REPLICATION, its password sent as a SCRAM verifier made here
// (so the plain password never reaches the primary's statement log), and checked against the stored one
// when it can be read, so the configured password wins after a rotation cut off half-way.
import { createHash, createHmac, pbkdf2Sync, randomBytes, timingSafeEqual } from "node:crypto";
import type { Logger } from "pino";
import type { PostgresConnections } from "./postgres_connections.ts";
import { quoteIdent, quoteLiteral, type ServerTarget } from "./postgres_names.ts";

const scramIterations = 4096;

function saltedKeys(password: string, salt: Buffer, iterations: number): { stored: Buffer; server: Buffer } {
  const salted = pbkdf2Sync(password.normalize("NFKC"), salt, iterations, 32, "sha256");
  const client = createHmac("sha256", salted).update("Client Key").digest();
  return {
    stored: createHash("sha256").update(client).digest(),
    server: createHmac("sha256", salted).update("Server Key").digest(),
  };
}

/** `SCRAM-SHA-256$iterations:salt$StoredKey:ServerKey`, what PostgreSQL stores and accepts as a password. */
export function scramVerifier(password: string): string {
  const salt = randomBytes(16);
  const { stored, server } = saltedKeys(password, salt, scramIterations);
  return `SCRAM-SHA-256$${scramIterations}:${salt.toString("base64")}$${stored.toString("base64")}:${server.toString("base64")}`;
}

/** Verifiers already found to match a password (by its hash): a pass checks the role once per database. */
const matched = new Map<string, string>();
const matchedMax = 16;

/** Whether `stored` (pg_authid.rolpassword: SCRAM or md5) is `password`'s. */
export function passwordMatches(password: string, stored: string | null, role: string): boolean {
  if (stored === null) return false;
  const digest = createHash("sha256").update(password).digest("hex");
  if (matched.get(stored) === digest) return true;
  const matches = verifierMatches(password, stored, role);
  if (matches) {
    if (matched.size >= matchedMax) matched.clear();
    matched.set(stored, digest);
  }
  return matches;
}

function verifierMatches(password: string, stored: string, role: string): boolean {
  if (stored.startsWith("md5")) {
    return (
      stored ===
      `md5${createHash("md5")
        .update(password + role)
        .digest("hex")}`
    );
  }
  const scram = /^SCRAM-SHA-256\$(\d+):([^$]+)\$([^:]+):(.+)$/.exec(stored);
  if (scram === null) return false;
  const expected = Buffer.from(scram[3]!, "base64");
  const { stored: storedKey } = saltedKeys(password, Buffer.from(scram[2]!, "base64"), Number(scram[1]));
  return expected.length === storedKey.length && timingSafeEqual(expected, storedKey);
}

export interface FollowerRole {
  role: string;
  password: string;
}

/**
 * Creates the role if missing, gives it LOGIN REPLICATION if it lacks either, and sets its password when the
 * stored one is not the configured one (read from pg_authid, superusers only) or when `force` says so.
 */
export async function ensureFollowerRole(
  connections: PostgresConnections,
  primary: ServerTarget,
  follower: FollowerRole,
  logger: Logger,
  force = false,
): Promise<void> {
  const role = quoteIdent(follower.role);
  const password = () => quoteLiteral(scramVerifier(follower.password));
  const [existing] = await connections.query<{ login: boolean; replication: boolean }>(
    primary,
    undefined,
    "SELECT rolcanlogin AS login, rolreplication AS replication FROM pg_roles WHERE rolname = $1",
    [follower.role],
  );
  if (existing === undefined) {
    await connections.query(
      primary,
      undefined,
      `CREATE ROLE ${role} WITH LOGIN REPLICATION PASSWORD ${password()}`,
    );
    logger.info({ role: follower.role }, "follower role created on the primary");
    return;
  }
  if (!existing.login || !existing.replication) {
    await connections.query(primary, undefined, `ALTER ROLE ${role} WITH LOGIN REPLICATION`);
    logger.info({ role: follower.role }, "follower role given LOGIN REPLICATION");
  }
  let stale = force;
  if (!stale) {
    const [rolpassword] = await connections
      .query<{ stored: string | null }>(
        primary,
        undefined,
        "SELECT rolpassword AS stored FROM pg_authid WHERE rolname = $1",
        [follower.role],
      )
      .catch(() => [] as Array<{ stored: string | null }>);
    stale =
      rolpassword !== undefined && !passwordMatches(follower.password, rolpassword.stored, follower.role);
  }
  if (stale) {
    await connections.query(primary, undefined, `ALTER ROLE ${role} WITH PASSWORD ${password()}`);
    logger.info({ role: follower.role }, "follower role's password set on the primary");
  }
}
