// `tandem tls ca|cert|psk`: make the key material for the two security modes. Files are created, never
// overwritten; private keys and PSKs are written with mode 0600 and never printed.
import { randomBytes } from "node:crypto";
import { access, mkdir, readFile, writeFile } from "node:fs/promises";
import { isIP } from "node:net";
import { join } from "node:path";
import { type Command, InvalidArgumentError } from "commander";
import { nodeIdPattern, pskBytesMin } from "../../config/index.ts";
import type { PemPair } from "../../pki/index.ts";

// Loaded on use: the X.509 libraries are heavy, and `tandem agent` (same binary) must not pay for them.
type Pki = typeof import("../../pki/index.ts");
const loadPki = (): Promise<Pki> => import("../../pki/index.ts");

const privateFileMode = 0o600;
const publicFileMode = 0o644;
const privateDirMode = 0o700;
const dnsNamePattern = /^(\*\.)?[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/i;

export function registerTlsCommand(program: Command): void {
  const tls = program
    .command("tls")
    .description("create the cluster CA, node and client certificates (mtls mode) or a shared key (psk mode)")
    .addHelpText(
      "after",
      `
Examples (mtls, run once on an admin machine, then copy each node its files):
  tandem tls ca                      # tls/ca.pem + tls/ca-key.pem (keep ca-key.pem offline)
  tandem tls cert n1 --ip 10.0.0.1   # tls/n1.pem + tls/n1-key.pem for node n1
  tandem tls cert alice --client     # a client certificate for the TLS API
Example (psk):
  tandem tls psk --out psk.key       # the same file on every node`,
    );

  tls
    .command("ca")
    .description("create a cluster CA: <dir>/ca.pem and <dir>/ca-key.pem (mode 0600)")
    .option("--dir <dir>", "folder for the CA files", "tls")
    .option("--name <cn>", "common name of the CA", "tandem-ca")
    .option("--days <days>", "validity in days", parseDays, 3650)
    .addHelpText("after", "\nExample:\n  tandem tls ca --dir /etc/tandem/tls --name prod-ca")
    .action(async (options: { dir: string; name: string; days: number }, command: Command) => {
      const certPath = join(options.dir, "ca.pem");
      const keyPath = join(options.dir, "ca-key.pem");
      const pair = await withPkiErrors(command, (pki) =>
        pki.createClusterCa({ commonName: options.name, validDays: options.days }),
      );
      await writePair(command, options.dir, pair, certPath, keyPath);
      print(command, `wrote ${certPath} (CA certificate, give it to every node)\n`);
      print(command, `wrote ${keyPath} (CA private key, mode 0600: keep it off the nodes)\n`);
    });

  tls
    .command("cert")
    .argument("<name>", "node id (the certificate CN), or a client name with --client")
    .description("issue <dir>/<name>.pem and <dir>/<name>-key.pem (mode 0600), signed by the CA in <dir>")
    .option("--dir <dir>", "folder holding ca.pem and ca-key.pem; the new files go there too", "tls")
    .option(
      "--client",
      "a client certificate for the TLS API (clientAuth only) instead of a node certificate",
    )
    .option("--dns <names>", "extra DNS names for the certificate, comma-separated", parseDnsNames)
    .option("--ip <addresses>", "extra IP addresses for the certificate, comma-separated", parseIpAddresses)
    .option("--days <days>", "validity in days", parseDays, 825)
    .addHelpText(
      "after",
      `
Node certificates always carry localhost, 127.0.0.1, ::1 and the node id as names; add the addresses
peers dial with --ip/--dns. Examples:
  tandem tls cert n2 --ip 10.0.0.2 --dns n2.example.internal
  tandem tls cert ops-alice --client --days 90`,
    )
    .action(
      async (
        name: string,
        options: { dir: string; client?: boolean; dns?: string[]; ip?: string[]; days: number },
        command: Command,
      ) => {
        if (!nodeIdPattern.test(name)) {
          command.error(`tandem tls cert: name "${name}" must match ${nodeIdPattern.source}`, {
            exitCode: 2,
          });
        }
        const ca = await readCa(command, options.dir);
        const pair = await withPkiErrors(command, (pki) =>
          pki.issueCertificate(ca, {
            commonName: name,
            kind: options.client ? "client" : "node",
            validDays: options.days,
            ...(options.dns === undefined ? {} : { dnsNames: options.dns }),
            ...(options.ip === undefined ? {} : { ipAddresses: options.ip }),
          }),
        );
        const certPath = join(options.dir, `${name}.pem`);
        const keyPath = join(options.dir, `${name}-key.pem`);
        await writePair(command, options.dir, pair, certPath, keyPath);
        print(command, `wrote ${certPath} (${options.client ? "client" : "node"} certificate, CN=${name})\n`);
        print(command, `wrote ${keyPath} (private key, mode 0600)\n`);
      },
    );

  tls
    .command("psk")
    .description(`write a new shared key for psk mode: ${pskBytesMin} random bytes as hex, mode 0600`)
    .option("--out <file>", "where to write it", "psk.key")
    .addHelpText(
      "after",
      "\nCopy the same file to every node, then set security.psk_file.\nExample:\n  tandem tls psk --out /etc/tandem/psk.key",
    )
    .action(async (options: { out: string }, command: Command) => {
      await writeNew(command, options.out, `${randomBytes(pskBytesMin).toString("hex")}\n`, privateFileMode);
      print(command, `wrote ${options.out} (shared key, mode 0600)\n`);
    });
}

function print(command: Command, text: string): void {
  command.configureOutput().writeOut?.(text);
}

async function readCa(command: Command, dir: string): Promise<PemPair> {
  const certPath = join(dir, "ca.pem");
  const keyPath = join(dir, "ca-key.pem");
  try {
    return { certPem: await readFile(certPath, "utf8"), keyPem: await readFile(keyPath, "utf8") };
  } catch (cause) {
    const code = (cause as NodeJS.ErrnoException).code ?? "unreadable";
    return command.error(
      `tandem tls cert: cannot read the CA in ${dir} (${code}); create one with: tandem tls ca --dir ${dir}`,
    );
  }
}

/** Checks both paths are free before writing either, so a refusal leaves nothing half-made. */
async function writePair(command: Command, dir: string, pair: PemPair, certPath: string, keyPath: string) {
  await mkdir(dir, { recursive: true, mode: privateDirMode });
  for (const path of [certPath, keyPath]) await refuseExisting(command, path);
  await writeNew(command, keyPath, pair.keyPem, privateFileMode);
  await writeNew(command, certPath, pair.certPem, publicFileMode);
}

async function refuseExisting(command: Command, path: string): Promise<void> {
  const exists = await access(path).then(
    () => true,
    (cause: NodeJS.ErrnoException) => cause.code !== "ENOENT",
  );
  if (exists)
    command.error(`tandem tls: ${path} already exists; refusing to overwrite it (move it away first)`);
}

/** `wx`: fails if the file exists, even if it appeared after our check. */
async function writeNew(command: Command, path: string, text: string, mode: number): Promise<void> {
  try {
    await writeFile(path, text, { flag: "wx", mode });
  } catch (cause) {
    const code = (cause as NodeJS.ErrnoException).code;
    if (code === "EEXIST") command.error(`tandem tls: ${path} already exists; refusing to overwrite it`);
    command.error(`tandem tls: cannot write ${path} (${code ?? "error"})`);
  }
}

async function withPkiErrors<T>(command: Command, make: (pki: Pki) => Promise<T>): Promise<T> {
  const pki = await loadPki();
  try {
    return await make(pki);
  } catch (cause) {
    if (cause instanceof pki.PkiInputError) return command.error(`tandem tls: ${cause.message}`);
    throw cause;
  }
}

function parseDays(text: string): number {
  const days = Number(text);
  if (!/^[0-9]+$/.test(text) || days < 1 || days > 36_500)
    throw new InvalidArgumentError("expected 1..36500 days");
  return days;
}

function parseDnsNames(text: string): string[] {
  const names = splitList(text);
  const bad = names.find((name) => !dnsNamePattern.test(name));
  if (bad !== undefined) throw new InvalidArgumentError(`"${bad}" is not a DNS name`);
  return names;
}

function parseIpAddresses(text: string): string[] {
  const addresses = splitList(text);
  const bad = addresses.find((address) => isIP(address) === 0);
  if (bad !== undefined) throw new InvalidArgumentError(`"${bad}" is not an IP address`);
  return addresses;
}

function splitList(text: string): string[] {
  return text
    .split(",")
    .map((item) => item.trim())
    .filter((item) => item !== "");
}
