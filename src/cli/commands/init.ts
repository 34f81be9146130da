// `tandem init`: write a commented starter tandem.yml that passes `tandem config check`'s schema rules.
import { writeFile } from "node:fs/promises";
import { type Command, InvalidArgumentError, Option } from "commander";
import {
  type HostPort,
  nodeIdPattern,
  parseConfigText,
  parseHostPort,
  starterConfigText,
} from "../../config/index.ts";

interface InitOptions {
  id: string;
  peers: { id: string; address: HostPort }[];
  security: "mtls" | "psk";
  advertise?: HostPort;
  out: string;
  force?: boolean;
}

export function registerInitCommand(program: Command): void {
  program
    .command("init")
    .description("write a starter tandem.yml, every key explained in a comment")
    .option("--id <id>", "this node's id", parseNodeId, "n1")
    .option("--peers <list>", "the other nodes, comma-separated id=host:port", parsePeers, [])
    .addOption(
      new Option("--security <mode>", "how nodes authenticate").choices(["mtls", "psk"]).default("mtls"),
    )
    .option(
      "--advertise <host:port>",
      "address peers dial; the node then listens on 0.0.0.0 at that port",
      parseAddress,
    )
    .option("--out <file>", "where to write the config", "tandem.yml")
    .option("--force", "overwrite an existing file")
    .addHelpText(
      "after",
      `
Without --advertise the node listens on 127.0.0.1:7400 only (a single-machine trial).
Examples:
  tandem init --id n1 --advertise 10.0.0.1:7400 --peers n2=10.0.0.2:7400,n3=10.0.0.3:7400
  tandem init --id n1 --security psk --out /etc/tandem/tandem.yml
Next steps: tandem tls ca && tandem tls cert n1 (mtls) or tandem tls psk (psk), then tandem config check.`,
    )
    .action(async (options: InitOptions, command: Command) => {
      const text = starterConfigText({
        id: options.id,
        peers: options.peers,
        security: options.security,
        ...(options.advertise === undefined ? {} : { advertise: options.advertise }),
      });
      // Flags can still clash (self listed as a peer, two peers on one address): refuse before writing.
      const checked = parseConfigText(text, options.out);
      if (!checked.ok)
        command.error(`tandem init: these options make an invalid config:\n${checked.error.format()}`);
      try {
        await writeFile(options.out, text, { flag: options.force ? "w" : "wx" });
      } catch (cause) {
        const code = (cause as NodeJS.ErrnoException).code;
        if (code === "EEXIST")
          command.error(`tandem init: ${options.out} already exists; use --force to overwrite it`);
        command.error(`tandem init: cannot write ${options.out} (${code ?? "error"})`);
      }
      command.configureOutput().writeOut?.(`wrote ${options.out}\n`);
    });
}

function parseNodeId(text: string): string {
  if (!nodeIdPattern.test(text))
    throw new InvalidArgumentError(`expected an id matching ${nodeIdPattern.source}`);
  return text;
}

function parseAddress(text: string): HostPort {
  const parsed = parseHostPort(text);
  if (!parsed.ok) throw new InvalidArgumentError(parsed.reason);
  return parsed.value;
}

function parsePeers(text: string): InitOptions["peers"] {
  return text
    .split(",")
    .filter((item) => item.trim() !== "")
    .map((item) => {
      const equals = item.indexOf("=");
      if (equals < 0) throw new InvalidArgumentError(`"${item}": expected id=host:port`);
      return {
        id: parseNodeId(item.slice(0, equals).trim()),
        address: parseAddress(item.slice(equals + 1).trim()),
      };
    });
}
