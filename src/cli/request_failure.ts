// Why a request from the CLI to the API failed, said so that the operator can act: a dead agent, a TLS port
// that wants a client certificate, a server certificate the --ca does not vouch for, a client certificate
// the server refused (and, from the files themselves, why it would). Also the checks of the credential files
// that need no server: each must parse, and the key must belong to the certificate.
import { createPrivateKey, X509Certificate } from "node:crypto";
import type { ApiCredentials } from "./api_client.ts";

/** Where each credential came from (file names are not secrets; their contents are never printed). */
export interface CredentialFiles {
  ca?: string;
  cert?: string;
  key?: string;
}

/** The first problem with the PEM files that makes them unusable, or null. */
export function credentialFileProblem(files: CredentialFiles, credentials: ApiCredentials): string | null {
  const certificate = (what: "ca" | "cert"): X509Certificate | string | null => {
    const pem = credentials[what];
    if (pem === undefined) return null;
    try {
      return new X509Certificate(pem);
    } catch {
      return `the --${what} file ${files[what]} is not a PEM certificate`;
    }
  };
  const ca = certificate("ca");
  if (typeof ca === "string") return ca;
  const cert = certificate("cert");
  if (typeof cert === "string") return cert;
  if (credentials.key === undefined) return null;
  let key: ReturnType<typeof createPrivateKey>;
  try {
    key = createPrivateKey(credentials.key);
  } catch {
    return `the --key file ${files.key} is not a PEM private key (or it is encrypted)`;
  }
  if (cert !== null && !cert.checkPrivateKey(key))
    return `the --key file ${files.key} is not the private key of the --cert file ${files.cert}`;
  return null;
}

/** Why the server would refuse the client certificate, as far as the files tell; null when they look fine. */
function clientCertificateDoubt(
  files: CredentialFiles,
  credentials: ApiCredentials,
  now: Date,
): string | null {
  if (credentials.cert === undefined) return null;
  try {
    const cert = new X509Certificate(credentials.cert);
    if (new Date(cert.validTo) < now) return `the --cert file ${files.cert} expired on ${cert.validTo}`;
    if (new Date(cert.validFrom) > now)
      return `the --cert file ${files.cert} is valid only from ${cert.validFrom}`;
    if (credentials.ca === undefined) return null;
    const ca = new X509Certificate(credentials.ca);
    if (!(cert.checkIssued(ca) && cert.verify(ca.publicKey)))
      return `the --cert file ${files.cert} is not issued by the cluster CA in the --ca file ${files.ca}`;
  } catch {
    // Unparsable files were refused before any request (credentialFileProblem).
  }
  return null;
}

/** Server certificate checks that failed on this side: the --ca does not vouch for the server. */
const serverTrustCodes = new Set([
  "SELF_SIGNED_CERT_IN_CHAIN",
  "DEPTH_ZERO_SELF_SIGNED_CERT",
  "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
  "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
  "UNABLE_TO_GET_ISSUER_CERT",
  "CERT_HAS_EXPIRED",
  "CERT_NOT_YET_VALID",
  "ERR_TLS_CERT_ALTNAME_INVALID",
]);
/** Nothing answered at that address: the agent is down, or the address is wrong. */
const unreachableCodes = new Set([
  "ECONNREFUSED",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ENOTFOUND",
  "EAI_AGAIN",
  "ETIMEDOUT",
]);

/** One sentence on why a request to `base` failed, naming the credential file at fault when there is one. */
export function describeRequestFailure(
  error: unknown,
  base: string,
  credentials: ApiCredentials,
  now = new Date(),
): string {
  const { message } = error as Error;
  const code = (error as NodeJS.ErrnoException).code ?? "";
  const files = credentials.files ?? {};
  if (unreachableCodes.has(code) || /^no (answer|connection) within/.test(message))
    return `cannot reach the Tandem API at ${base} (is the agent running?): ${message}`;
  if (serverTrustCodes.has(code)) {
    const ca =
      files.ca === undefined ? "no --ca was given" : `the --ca file ${files.ca} does not vouch for it`;
    return `the server at ${base} presented a certificate this client does not trust (${message}): ${ca}; pass the cluster CA with --ca (or TANDEM_CA)`;
  }
  const tlsRefusal =
    /alert certificate required|alert (unknown ca|bad certificate|certificate \w+|access denied)/.exec(
      message,
    );
  const https = base.startsWith("https:");
  if (tlsRefusal === null && !(https && (code === "ECONNRESET" || message === "socket hang up")))
    return `the request to the Tandem API at ${base} failed: ${message}`;
  if (credentials.cert === undefined) {
    return `the TLS port at ${base} requires a client certificate: pass --cert and --key (or TANDEM_CERT and TANDEM_KEY)`;
  }
  const what = tlsRefusal === null ? `closed the connection (${message})` : `sent "${tlsRefusal[0]}"`;
  const doubt = clientCertificateDoubt(files, credentials, now);
  return `the server at ${base} refused the client certificate in ${files.cert}: it ${what}${doubt === null ? "" : `; ${doubt}`}`;
}
