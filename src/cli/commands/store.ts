// `tandem put|get|rm|ls|watch`: the replicated store from the command line (docs/store.md).
//
// Exit codes: 0 done; 1 error (refused, unreachable, not found); 2 a write committed on the node but
// acknowledged by fewer than --min-acks peers (it stays there and spreads when peers come back).
import { readFile, rename, writeFile } from "node:fs/promises";
import { type Command, InvalidArgumentError } from "commander";
import type { MinAcks } from "../../store/index.ts";
import {
  apiBaseUrl,
  apiCredentialsFrom,
  type CredentialOptions,
  withCredentialOptions,
} from "../api_client.ts";
import { configPathFrom } from "../config_source.ts";
import { parseApiUrls, StoreClient, type WriteResult } from "../store_client.ts";
import { escapeControls } from "../terminal_text.ts";

export const exitNotAcknowledged = 2;

export interface ClientOptions extends CredentialOptions {
  config?: string;
  api: string[];
}

/**
 * --api (repeatable, comma-separated) wins; else the config's api.listen, else $TANDEM_API. Credentials
 * from --token/--ca/--cert/--key or their environment variables.
 */
export function storeClientFrom(options: ClientOptions): Promise<StoreClient> {
  const urls =
    options.api.length > 0
      ? parseApiUrls(options.api)
      : [
          new URL(
            apiBaseUrl({
              ...(options.config ? { config: options.config } : {}),
              configPath: configPathFrom(options.config),
            }),
          ),
        ];
  return StoreClient.connect(urls, { credentials: apiCredentialsFrom(options) });
}

export function parseMinAcksOption(text: string): MinAcks {
  if (text === "all") return "all";
  if (!/^\d{1,4}$/.test(text)) throw new InvalidArgumentError('a number of peers, or "all"');
  return Number(text);
}

const collect = (value: string, previous: string[]) => [...previous, value];

/** The options every store command shares. */
export function withClientOptions(command: Command): Command {
  const withApi = command
    .option(
      "-c, --config <file>",
      "read the API address from this config (default: $TANDEM_CONFIG or ./tandem.yml)",
    )
    .option(
      "--api <url>",
      "API URL; repeat or comma-separate to fail over between nodes (default: from config, else $TANDEM_API)",
      collect,
      [],
    );
  return withCredentialOptions(withApi);
}

function withMinAcks(command: Command): Command {
  return command.option(
    "--min-acks <n|all>",
    "peers that must hold the write before it is acknowledged (default: the node's, 1)",
    parseMinAcksOption,
  );
}

/** Prints a write's outcome; sets exit code 2 when it was not acknowledged. */
export function reportWrite(command: Command, what: string, result: WriteResult): void {
  const { outcome } = result;
  const label = escapeControls(what);
  const failed = escapeControls(outcome.hostsErr.map((h) => `${h.host}: ${h.error}`).join(", "));
  if (outcome.acked) {
    const peers = outcome.hostsOk.length > 0 ? outcome.hostsOk.join(", ") : "no peer needed";
    command
      .configureOutput()
      .writeOut?.(
        `${label}: acknowledged (${peers}; min_acks=${outcome.minAcks})${failed ? `; not yet on ${failed}` : ""}\n`,
      );
    return;
  }
  command
    .configureOutput()
    .writeErr?.(
      `${label}: NOT acknowledged: ${outcome.hostsOk.length} peer(s) hold it, min_acks=${outcome.minAcks} asked` +
        `${failed ? ` (${failed})` : ""}. It is committed on the node and spreads when peers return.\n`,
    );
  process.exitCode = exitNotAcknowledged;
}

/** Prints an error (escaped: it may echo a path or a server's message) and sets exit code 1. */
export function fail(command: Command, error: unknown): void {
  command
    .configureOutput()
    .writeErr?.(`tandem ${command.name()}: ${escapeControls((error as Error).message)}\n`);
  process.exitCode = 1;
}

async function readInput(file: string): Promise<Buffer> {
  if (file !== "-") return readFile(file);
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

export function registerStoreCommands(program: Command): void {
  withMinAcks(withClientOptions(program.command("put")))
    .description("write a value to the store from a file or stdin")
    .argument("<path>", "store path, e.g. certs/web.pem")
    .argument("[file]", 'file to read, or "-" for stdin', "-")
    .option("--json", "print the outcome as JSON")
    .addHelpText(
      "after",
      "\nExamples:\n  tandem put certs/web.pem ./web.pem --min-acks all\n  echo on | tandem put flags/maintenance",
    )
    .action(
      async (
        path: string,
        file: string,
        options: ClientOptions & { minAcks?: MinAcks; json?: boolean },
        command: Command,
      ) => {
        try {
          const value = await readInput(file);
          const client = await storeClientFrom(options);
          const result = await client.put(path, value, options.minAcks);
          if (!options.json) return reportWrite(command, `put ${path} (${value.byteLength} bytes)`, result);
          // Scripts read the outcome; the exit code still tells an unacknowledged write apart.
          command.configureOutput().writeOut?.(`${JSON.stringify(result.outcome)}\n`);
          if (!result.outcome.acked) process.exitCode = exitNotAcknowledged;
        } catch (error) {
          fail(command, error);
        }
      },
    );

  withClientOptions(program.command("get"))
    .description("print a value from the store (raw bytes), or write it to a file")
    .argument("<path>", "store path")
    .option("-o, --out <file>", "write the value to this file (atomically) instead of stdout")
    .addHelpText(
      "after",
      "\nExamples:\n  tandem get certs/web.pem\n  tandem get certs/web.pem --out /tmp/web.pem",
    )
    .action(async (path: string, options: ClientOptions & { out?: string }, command: Command) => {
      try {
        const client = await storeClientFrom(options);
        const value = await client.getRaw(path);
        if (value === null) throw new Error(`no entry at ${path}`);
        if (options.out === undefined) {
          process.stdout.write(value);
          return;
        }
        const temporary = `${options.out}.tandem-${process.pid}`;
        await writeFile(temporary, value);
        await rename(temporary, options.out);
      } catch (error) {
        fail(command, error);
      }
    });

  withMinAcks(withClientOptions(program.command("rm")))
    .description("delete an entry from the store (a tombstone that replicates like a write)")
    .argument("<path>", "store path")
    .addHelpText("after", "\nExample:\n  tandem rm certs/old.pem")
    .action(async (path: string, options: ClientOptions & { minAcks?: MinAcks }, command: Command) => {
      try {
        const client = await storeClientFrom(options);
        reportWrite(command, `rm ${path}`, await client.remove(path, options.minAcks));
      } catch (error) {
        fail(command, error);
      }
    });

  withClientOptions(program.command("ls"))
    .description("list entries under a prefix: size, version time, node, path")
    .argument("[prefix]", 'e.g. "certs/" (default: everything)', "")
    .option("--json", "one JSON object per line")
    .addHelpText("after", "\nExamples:\n  tandem ls certs/\n  tandem ls --json | jq .path")
    .action(async (prefix: string, options: ClientOptions & { json?: boolean }, command: Command) => {
      try {
        const client = await storeClientFrom(options);
        for await (const entry of client.listAll(prefix)) {
          const line = options.json
            ? JSON.stringify(entry)
            : `${String(entry.size).padStart(10)}  ${new Date(entry.version.wallMs).toISOString()}  ${entry.version.nodeId.padEnd(8)}  ${escapeControls(entry.path)}`;
          command.configureOutput().writeOut?.(`${line}\n`);
        }
      } catch (error) {
        fail(command, error);
      }
    });

  withClientOptions(program.command("watch"))
    .description("print one line per change under a prefix as it happens, until interrupted")
    .argument("[prefix]", "prefix to watch (default: everything)", "")
    .option("--from-seq <n>", "replay the node's changes after this sequence number first", parseSeq)
    .option("--json", "one JSON object per line")
    .addHelpText("after", "\nExamples:\n  tandem watch certs/\n  tandem watch --from-seq 0 --json")
    .action(
      async (
        prefix: string,
        options: ClientOptions & { fromSeq?: number; json?: boolean },
        command: Command,
      ) => {
        const abort = new AbortController();
        const stop = () => abort.abort();
        process.once("SIGINT", stop);
        process.once("SIGTERM", stop);
        try {
          const client = await storeClientFrom(options);
          const watchOptions = {
            signal: abort.signal,
            ...(options.fromSeq === undefined ? {} : { fromSeq: options.fromSeq }),
          };
          for await (const event of client.watch(prefix, watchOptions)) {
            const line = options.json
              ? JSON.stringify(event)
              : `${escapeControls(event.id)}  ${event.deleted ? "delete" : "put   "}  ${String(event.size).padStart(10)}  ${escapeControls(event.path)}`;
            command.configureOutput().writeOut?.(`${line}\n`);
          }
        } catch (error) {
          fail(command, error);
        } finally {
          process.off("SIGINT", stop);
          process.off("SIGTERM", stop);
        }
      },
    );
}

function parseSeq(text: string): number {
  if (!/^\d{1,15}$/.test(text)) throw new InvalidArgumentError("a non-negative integer");
  return Number(text);
}
