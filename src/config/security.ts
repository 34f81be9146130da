// Turns the security section into key material for the mesh: reads the files or the environment, checks
// that they fit together, and warns about loose file modes. Messages name files and reasons, never secrets.
import { createPrivateKey, type KeyObject, X509Certificate } from "node:crypto";
import { readFile, stat } from "node:fs/promises";
import type { MeshSecurity } from "../mesh/index.ts";
import { ConfigError, type ConfigProblem } from "./errors.ts";
import { err, ok, type Result } from "./result.ts";
import type { SecurityConfig, TandemConfig } from "./tandem_config.ts";

type MtlsConfig = Extract<SecurityConfig, { mode: "mtls" }>;

export interface LoadedSecurity {
  security: MeshSecurity;
  /** Not fatal, but worth telling the operator (e.g. a key readable by other users). */
  warnings: string[];
}

export const pskBytesMin = 32;
const hexPattern = /^(?:[0-9a-fA-F]{2})+$/;
const pskFormatMessage = `must hold hex text of at least ${pskBytesMin} bytes (make one with \`tandem tls psk\`)`;
/** Group and other permission bits. */
const nonOwnerModeMask = 0o077;

type Loaded<T> = { ok: true; value: T } | { ok: false; problem: ConfigProblem };

export async function loadMeshSecurity(
  config: TandemConfig,
  env: NodeJS.ProcessEnv = process.env,
): Promise<Result<LoadedSecurity, ConfigError>> {
  const warnings: string[] = [];
  const s = config.security;
  if (s.mode === "psk") {
    const key =
      s.pskFile === undefined ? pskFromEnv(s.pskEnv ?? "", env) : await pskFromFile(s.pskFile, warnings);
    return key.ok
      ? ok({ security: { mode: "psk", key: key.value }, warnings })
      : err(new ConfigError([key.problem]));
  }
  const [caCertPem, certPem, keyPem] = await Promise.all([
    readText(s.caFile, "security.ca_file"),
    readText(s.certFile, "security.cert_file"),
    readText(s.keyFile, "security.key_file"),
  ]);
  const problems = [caCertPem, certPem, keyPem].flatMap((r) => (r.ok ? [] : [r.problem]));
  if (!caCertPem.ok || !certPem.ok || !keyPem.ok) return err(new ConfigError(problems));
  warnings.push(...(await looseModeWarnings(s.keyFile)));
  const mismatch = certificateProblem(config.node.id, s, caCertPem.value, certPem.value, keyPem.value);
  if (mismatch !== null) return err(new ConfigError([mismatch]));
  return ok({
    security: { mode: "mtls", caCertPem: caCertPem.value, certPem: certPem.value, keyPem: keyPem.value },
    warnings,
  });
}

/** The files parse, the certificate is this node's, the CA issued it, it is in date and the key is its. */
function certificateProblem(
  nodeId: string,
  s: MtlsConfig,
  caPem: string,
  certPem: string,
  keyPem: string,
): ConfigProblem | null {
  const problem = (file: string, key: string, message: string): ConfigProblem => ({
    file,
    line: null,
    column: null,
    key,
    message,
  });
  const ca = parseCertificate(caPem);
  if (ca === null || !ca.ca) return problem(s.caFile, "security.ca_file", "is not a PEM CA certificate");
  const cert = parseCertificate(certPem);
  if (cert === null) return problem(s.certFile, "security.cert_file", "is not a PEM certificate");
  const commonName = commonNameOf(cert);
  if (commonName !== nodeId) {
    return problem(
      s.certFile,
      "security.cert_file",
      `is issued to "${commonName ?? ""}", not to this node "${nodeId}"`,
    );
  }
  if (!cert.checkIssued(ca) || !cert.verify(ca.publicKey)) {
    return problem(s.certFile, "security.cert_file", "was not issued by the CA in ca_file");
  }
  const nowMs = Date.now();
  if (nowMs < Date.parse(cert.validFrom) || nowMs > Date.parse(cert.validTo)) {
    return problem(
      s.certFile,
      "security.cert_file",
      `is not valid now (${cert.validFrom} to ${cert.validTo})`,
    );
  }
  const key = parsePrivateKey(keyPem);
  if (key === null) return problem(s.keyFile, "security.key_file", "is not a PEM private key");
  if (!cert.checkPrivateKey(key))
    return problem(s.keyFile, "security.key_file", "does not belong to cert_file");
  return null;
}

async function pskFromFile(path: string, warnings: string[]): Promise<Loaded<Buffer>> {
  const text = await readText(path, "security.psk_file");
  if (!text.ok) return text;
  warnings.push(...(await looseModeWarnings(path)));
  const key = decodePsk(text.value);
  if (key === null) return failure(path, "security.psk_file", pskFormatMessage);
  return { ok: true, value: key };
}

function pskFromEnv(name: string, env: NodeJS.ProcessEnv): Loaded<Buffer> {
  const text = env[name];
  const where = `$${name}`;
  if (text === undefined || text === "") return failure(where, "security.psk_env", "is not set");
  const key = decodePsk(text);
  if (key === null) return failure(where, "security.psk_env", pskFormatMessage);
  return { ok: true, value: key };
}

function decodePsk(text: string): Buffer | null {
  const hex = text.trim();
  if (!hexPattern.test(hex) || hex.length / 2 < pskBytesMin) return null;
  return Buffer.from(hex, "hex");
}

async function readText(path: string, key: string): Promise<Loaded<string>> {
  try {
    return { ok: true, value: await readFile(path, "utf8") };
  } catch (cause) {
    return failure(path, key, `cannot be read (${(cause as NodeJS.ErrnoException).code ?? "unreadable"})`);
  }
}

async function looseModeWarnings(path: string): Promise<string[]> {
  if (process.platform === "win32") return [];
  const mode = (await stat(path)).mode & 0o777;
  if ((mode & nonOwnerModeMask) === 0) return [];
  return [`${path} is readable by group or others (mode ${mode.toString(8)}); run: chmod 600 ${path}`];
}

function failure(file: string, key: string, message: string): { ok: false; problem: ConfigProblem } {
  return { ok: false, problem: { file, line: null, column: null, key, message } };
}

function parseCertificate(pem: string): X509Certificate | null {
  try {
    return new X509Certificate(pem);
  } catch {
    return null;
  }
}

function parsePrivateKey(pem: string): KeyObject | null {
  try {
    return createPrivateKey(pem);
  } catch {
    return null;
  }
}

function commonNameOf(cert: X509Certificate): string | null {
  const line = cert.subject.split("\n").find((part) => part.startsWith("CN="));
  return line === undefined ? null : line.slice("CN=".length);
}
