// The app of bench/journal.ts's "embedded" way: Tandem's agent in the app's process (tandem/embed) with the
// app's own SQLite database (WAL, synchronous = FULL), each entry recorded in an app transaction of its own
// beside an app row (the transactional outbox), and an in-process handler that notes when each entry of
// another node arrived. Started as `node journal_app.ts agent --config FILE` (what the cluster harness
// runs); it prints {"app":"listening","port":N} and takes the bench's commands over HTTP on 127.0.0.1:
//   POST /burst?n=N&node=ID   records N entries as fast as it can (one transaction each; the event loop
//                             is let go every `perTurn` records so the agent ships and applies meanwhile)
//   POST /pace?rate=R&seconds=S&node=ID  records R entries a second for S seconds (due ones every 10 ms)
//   GET /progress             {"recorded":N,"applied":N}
//   GET /times                {"recorded":[[id,ms],…],"applied":[[id,ms],…]} (ms: wall clock)
import { randomBytes } from "node:crypto";
import { createServer, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import Database from "better-sqlite3";
import { startEmbeddedAgent } from "tandem/embed";

const DATA_BYTES = 256;
const KEYS = 64;
/** Records per event-loop turn in a burst: each its own transaction, then the loop runs the agent. */
const perTurn = 16;

const configPath = process.argv[process.argv.indexOf("--config") + 1];
if (configPath === undefined || !process.argv.includes("--config"))
  throw new Error("usage: agent --config FILE");

const db = new Database(`${configPath}.app.db`);
db.pragma("journal_mode = WAL");
db.pragma("synchronous = FULL");
db.exec("CREATE TABLE IF NOT EXISTS actions (n INTEGER PRIMARY KEY, entry_id TEXT NOT NULL)");
const insertAction = db.prepare("INSERT INTO actions (entry_id) VALUES (?)");

const recorded: Array<[string, number]> = [];
/** The first time each entry arrived (a repeat, at least once, is not counted again). */
const applied = new Map<string, number>();
const data = randomBytes(DATA_BYTES / 2).toString("hex");
let counter = 0;

const tandem = await startEmbeddedAgent({
  config: configPath,
  db,
  handlers: {
    "bench.entry": (entry) => {
      if (!applied.has(entry.id)) applied.set(entry.id, Date.now());
    },
  },
});

/** One app action: its row and its journal entry in one transaction. */
const act = db.transaction((node: string): string => {
  const entry = tandem.journal.record({ type: "bench.entry", key: `${node}-k${counter % KEYS}`, data });
  insertAction.run(entry.id);
  return entry.id;
});

function recordOne(node: string): void {
  const atMs = Date.now();
  counter += 1;
  recorded.push([act(node), atMs]);
}

async function burst(n: number, node: string): Promise<void> {
  for (let done = 0; done < n; ) {
    for (let i = 0; i < perTurn && done < n; i++, done++) recordOne(node);
    await new Promise((resolve) => setImmediate(resolve));
  }
}

async function pace(rate: number, seconds: number, node: string): Promise<void> {
  const start = Date.now();
  let owed = 0;
  let last = start;
  while (Date.now() - start < seconds * 1000) {
    const now = Date.now();
    owed += ((now - last) * rate) / 1000;
    last = now;
    while (owed >= 1) {
      owed -= 1;
      recordOne(node);
    }
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

function answer(res: ServerResponse, body: unknown): void {
  res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(body));
}

const server = createServer((req, res) => {
  const url = new URL(req.url ?? "/", "http://app");
  const node = url.searchParams.get("node") ?? tandem.nodeId;
  const run = (work: Promise<void>) =>
    work.then(
      () => answer(res, { recorded: recorded.length }),
      (error: Error) => res.writeHead(500).end(error.message),
    );
  if (req.method === "POST" && url.pathname === "/burst") {
    void run(burst(Number(url.searchParams.get("n")), node));
  } else if (req.method === "POST" && url.pathname === "/pace") {
    void run(pace(Number(url.searchParams.get("rate")), Number(url.searchParams.get("seconds")), node));
  } else if (url.pathname === "/progress") {
    answer(res, { recorded: recorded.length, applied: applied.size });
  } else if (url.pathname === "/times") {
    answer(res, { recorded, applied: [...applied] });
  } else res.writeHead(404).end();
});
server.listen(0, "127.0.0.1", () => {
  process.stdout.write(
    `${JSON.stringify({ app: "listening", port: (server.address() as AddressInfo).port })}\n`,
  );
});

process.once("SIGTERM", () => {
  server.close();
  void tandem.stop().then(() => {
    db.close();
    process.exit(0);
  });
});
