// Certificate tooling for mtls mode: a cluster CA and the node/client certificates it signs.
// ECDSA P-256 keys, PKCS#8 PEM, loadable by node:tls. Built on @peculiar/x509 over Node's WebCrypto, so
// nothing here implements cryptography itself.
import { createPrivateKey, KeyObject, randomBytes, webcrypto } from "node:crypto";
import "reflect-metadata"; // @peculiar/x509 resolves its algorithms through tsyringe, which needs it
import * as x509 from "@peculiar/x509";

type CryptoKey = webcrypto.CryptoKey;
type CryptoKeyPair = webcrypto.CryptoKeyPair;

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

export interface PemPair {
  certPem: string;
  keyPem: string;
}

export type CertificateKind = "node" | "client";

export interface IssueOptions {
  commonName: string;
  kind: CertificateKind;
  /** Extra DNS names; node certificates always carry "localhost" and their node id. */
  dnsNames?: string[];
  /** Extra IP addresses; node certificates always carry 127.0.0.1 and ::1. */
  ipAddresses?: string[];
  validDays: number;
}

/** The PEM handed in is not a usable certificate or key, or the CA key does not belong to the CA. */
export class PkiInputError extends Error {
  override readonly name = "PkiInputError";
}

const keyAlgorithm: webcrypto.EcKeyGenParams = { name: "ECDSA", namedCurve: "P-256" };
const signingAlgorithm: webcrypto.EcdsaParams = { name: "ECDSA", hash: "SHA-256" };
const dayMs = 86_400_000;
/** Tolerates clocks a little behind the issuer's, so a fresh certificate is valid everywhere at once. */
const notBeforeBackdateMs = 60_000;
/** RFC 5280 allows 20 octets; 16 random bytes with the top bit cleared keep the serial positive. */
const serialBytes = 16;
const nodeDnsNamesDefault = ["localhost"];
const nodeIpAddressesDefault = ["127.0.0.1", "::1"];
const validDaysMax = 36_500;

export async function createClusterCa(o: { commonName: string; validDays: number }): Promise<PemPair> {
  assertValidity(o.commonName, o.validDays);
  const keys = await generateKeys();
  const validity = validityWindow(o.validDays);
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomSerial(),
    name: distinguishedName(o.commonName),
    notBefore: validity.notBefore,
    notAfter: validity.notAfter,
    keys,
    signingAlgorithm,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return { certPem: cert.toString("pem"), keyPem: await exportKeyPem(keys.privateKey) };
}

export async function issueCertificate(ca: PemPair, o: IssueOptions): Promise<PemPair> {
  assertValidity(o.commonName, o.validDays);
  const caCert = parseCertificate(ca.certPem);
  const caKey = await importSigningKey(ca.keyPem);
  const keys = await generateKeys();
  const validity = validityWindow(o.validDays);
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: randomSerial(),
    subject: distinguishedName(o.commonName),
    issuer: caCert.subject,
    notBefore: validity.notBefore,
    notAfter: validity.notAfter,
    publicKey: keys.publicKey,
    signingKey: caKey,
    signingAlgorithm,
    extensions: await leafExtensions(o, keys.publicKey, caCert),
  });
  // A key from another CA would still sign; only the verify below notices the mismatch.
  if (!(await cert.verify({ publicKey: caCert.publicKey, signatureOnly: true }))) {
    throw new PkiInputError("the CA key does not belong to the CA certificate");
  }
  return { certPem: cert.toString("pem"), keyPem: await exportKeyPem(keys.privateKey) };
}

export function certificateCommonName(certPem: string): string {
  const commonName = parseCertificate(certPem).subjectName.getField("CN")[0];
  if (commonName === undefined) throw new PkiInputError("the certificate has no common name (CN)");
  return commonName;
}

async function leafExtensions(
  o: IssueOptions,
  publicKey: CryptoKey,
  caCert: x509.X509Certificate,
): Promise<x509.Extension[]> {
  const usages =
    o.kind === "node"
      ? [x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth]
      : [x509.ExtendedKeyUsage.clientAuth];
  const extensions: x509.Extension[] = [
    new x509.BasicConstraintsExtension(false, undefined, true),
    new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
    new x509.ExtendedKeyUsageExtension(usages),
    await x509.SubjectKeyIdentifierExtension.create(publicKey),
    await x509.AuthorityKeyIdentifierExtension.create(caCert.publicKey),
  ];
  const names = subjectAltNames(o);
  if (names.length > 0) extensions.push(new x509.SubjectAlternativeNameExtension(names));
  return extensions;
}

function subjectAltNames(o: IssueOptions): x509.JsonGeneralNames {
  const dnsDefaults = o.kind === "node" ? [...nodeDnsNamesDefault, o.commonName] : [];
  const ipDefaults = o.kind === "node" ? nodeIpAddressesDefault : [];
  const dnsNames = unique([...dnsDefaults, ...(o.dnsNames ?? [])]);
  const ipAddresses = unique([...ipDefaults, ...(o.ipAddresses ?? [])]);
  return [
    ...dnsNames.map((value) => ({ type: "dns" as const, value })),
    ...ipAddresses.map((value) => ({ type: "ip" as const, value })),
  ];
}

function unique(values: string[]): string[] {
  return [...new Set(values)];
}

function assertValidity(commonName: string, validDays: number): void {
  if (commonName.length === 0 || commonName.length > 64) {
    throw new PkiInputError("the common name must be 1 to 64 characters");
  }
  if (!Number.isInteger(validDays) || validDays < 1 || validDays > validDaysMax) {
    throw new PkiInputError(`validity must be a whole number of days in 1..${validDaysMax}`);
  }
}

function validityWindow(validDays: number): { notBefore: Date; notAfter: Date } {
  const nowMs = Date.now();
  return { notBefore: new Date(nowMs - notBeforeBackdateMs), notAfter: new Date(nowMs + validDays * dayMs) };
}

function distinguishedName(commonName: string): x509.JsonName {
  return [{ CN: [commonName] }];
}

function randomSerial(): string {
  const bytes = randomBytes(serialBytes);
  bytes[0] = (bytes[0] ?? 0) & 0x7f;
  return bytes.toString("hex");
}

async function generateKeys(): Promise<CryptoKeyPair> {
  return (await webcrypto.subtle.generateKey(keyAlgorithm, true, ["sign", "verify"])) as CryptoKeyPair;
}

async function exportKeyPem(key: CryptoKey): Promise<string> {
  return KeyObject.from(key).export({ type: "pkcs8", format: "pem" }).toString();
}

function parseCertificate(certPem: string): x509.X509Certificate {
  try {
    return new x509.X509Certificate(certPem);
  } catch (cause) {
    throw new PkiInputError("not a PEM certificate", { cause });
  }
}

async function importSigningKey(keyPem: string): Promise<CryptoKey> {
  try {
    // createPrivateKey also accepts SEC1 ("EC PRIVATE KEY") keys made by openssl.
    const der = createPrivateKey(keyPem).export({ type: "pkcs8", format: "der" });
    return await webcrypto.subtle.importKey("pkcs8", der, keyAlgorithm, false, ["sign"]);
  } catch (cause) {
    throw new PkiInputError("the CA key is not a P-256 private key in PEM", { cause });
  }
}
