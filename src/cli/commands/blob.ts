// `tandem blob ls ENTRY` and `tandem blob get ENTRY[/N] [--out FILE]`: where an entry's offloaded files
// went, and one of them fetched and decrypted by the agent from whichever store holds it (any node can:
// a session recorded on one node replays on another). The download is checked against the size and
// SHA-256 recorded at upload; --out writes a temporary file and renames it only once it checks out.
import { createWriteStream } from "node:fs";
import { rename, rm } from "node:fs/promises";
import { pipeline } from "node:stream/promises";
import type { Command } from "commander";
import {
  type ApiCommandOptions,
  apiBaseUrl,
  apiCredentialsFrom,
  openApiStream,
  withApiOptions,
} from "../api_client.ts";
import { callApi, capabilityGuard } from "../capability_command.ts";
import { configPathFrom } from "../config_source.ts";
import { escapeControls } from "../terminal_text.ts";

const answerTimeoutMs = 30_000;

interface BlobListing {
  blobs: Array<{
    index: number;
    name: string;
    store: string;
    key: string;
    size: number;
    sha256: string;
    uploadedAt: string;
    origin: string;
  }>;
}

const guarded = capabilityGuard(
  "blob ",
  "/api/v1/blobs",
  "this node has no blob stores (its tandem.yml has no blob: section; docs/blob.md)",
);

/** ENTRY or ENTRY/N (N defaults to 0, the entry's first file). */
function parseTarget(target: string): { entry: string; index: number } {
  const match = /^([A-Za-z0-9-]{1,64})(?:\/(\d{1,6}))?$/.exec(target);
  if (match === null) throw new Error(`expected ENTRY_ID or ENTRY_ID/N, got ${target}`);
  return { entry: match[1] as string, index: Number(match[2] ?? 0) };
}

export function registerBlobCommands(program: Command): void {
  const blob = program
    .command("blob")
    .description("files offloaded from journal entries to the blob stores (docs/blob.md)");

  withApiOptions(
    blob.command("ls").description("where an entry's files went").argument("<entry>", "a journal entry's id"),
  ).action((entry: string, options: ApiCommandOptions & { json?: boolean }) =>
    guarded("ls", async () => {
      const { entry: id } = parseTarget(entry);
      const listing = (await callApi(options, `/api/v1/blobs/${id}`, {
        timeoutMs: answerTimeoutMs,
      })) as BlobListing;
      if (options.json) {
        process.stdout.write(`${JSON.stringify(listing)}\n`);
        return;
      }
      for (const b of listing.blobs) {
        process.stdout.write(
          `${id}/${b.index}  ${escapeControls(b.name)}  ${b.size} bytes  ${b.store}:${b.key}  from ${b.origin} at ${b.uploadedAt}\n`,
        );
      }
    }),
  );

  withApiOptions(
    blob
      .command("get")
      .description("fetch and decrypt an offloaded file, checked against its recorded size and SHA-256")
      .argument("<entry[/n]>", "a journal entry's id, and which of its files (default 0)")
      .option("--out <file>", "write it here (default: standard output, unless that is a terminal)"),
  )
    .addHelpText(
      "after",
      "\nExamples:\n  tandem blob get 0b9c1a52-7d1e-4c55-9a1e-2f8d3c4b5a61 --out session.cast\n" +
        "  tandem blob get 0b9c1a52-7d1e-4c55-9a1e-2f8d3c4b5a61/1 | less",
    )
    .action((target: string, options: ApiCommandOptions & { out?: string }) =>
      guarded("get", async () => {
        const { entry, index } = parseTarget(target);
        if (options.out === undefined && process.stdout.isTTY) {
          throw new Error(
            "refusing to write a file to the terminal: give --out FILE, or redirect the output",
          );
        }
        const base = apiBaseUrl({ ...options, configPath: configPathFrom(options.config) });
        const res = await openApiStream(base, `/api/v1/blobs/${entry}/${index}`, {
          timeoutMs: answerTimeoutMs,
          credentials: apiCredentialsFrom(options),
          accept: "application/octet-stream",
        });
        const expected = {
          size: Number(res.headers["content-length"]),
          sha256: String(res.headers["x-tandem-sha256"]),
        };
        const { HashingCounter } = await import("../../blob/index.ts");
        const check = new HashingCounter();
        const verify = () => {
          const { size, sha256 } = check.result();
          if (size !== expected.size || sha256 !== expected.sha256) {
            throw new Error(
              `the download does not check out: ${size} of ${expected.size} bytes, sha256 ${sha256}`,
            );
          }
        };
        if (options.out === undefined) {
          await pipeline(res, check, process.stdout).catch((error: Error) => {
            throw new Error(`download cut short (${check.size} of ${expected.size} bytes): ${error.message}`);
          });
          return verify();
        }
        const temporary = `${options.out}.${process.pid}.part`;
        try {
          await pipeline(res, check, createWriteStream(temporary, { mode: 0o600 }));
          verify();
          await rename(temporary, options.out);
        } catch (error) {
          await rm(temporary, { force: true });
          if (check.size < expected.size && !(error as Error).message.startsWith("the download")) {
            throw new Error(
              `download cut short (${check.size} of ${expected.size} bytes): the agent logged why`,
            );
          }
          throw error;
        }
        process.stderr.write(`wrote ${options.out} (${check.size} bytes, sha256 ${expected.sha256})\n`);
      }),
    );
}
