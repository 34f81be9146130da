// The two small UDP programs of bench/services.ts, each run as its own process inside one of the lab's
// network namespaces (so neither dies with an agent or a keepalived that the bench kills):
//
//   node bench/support/services_udp.ts echo NODE VIP PORT
//     On every node: bound to VIP:PORT (the namespace allows binding an address it does not hold yet,
//     net.ipv4.ip_nonlocal_bind=1), so it hears datagrams only while its node holds the VIP, and answers
//     from the VIP with the datagram followed by its node's name. Prints "listening" once bound.
//
//   node bench/support/services_udp.ts probe VIP PORT INTERVAL_MS
//     On the neighbour: sends "SEQ SENT_AT_MS" to VIP:PORT every INTERVAL_MS and prints one line per answer:
//     "SEQ SENT_AT_MS RECEIVED_AT_MS NODE SOURCE_ADDRESS" (Date.now(), the machine's clock the bench reads too).
//
// Both exit when their standard input closes (the bench went away), besides being killed by pid.
import { createSocket } from "node:dgram";

function exitWithParent(): void {
  process.stdin.on("data", () => {});
  process.stdin.on("close", () => process.exit(0));
}

function echo(node: string, vip: string, port: number): void {
  const socket = createSocket("udp4");
  socket.on("message", (message, remote) => {
    socket.send(`${message.toString()} ${node}`, remote.port, remote.address);
  });
  socket.on("error", (error) => {
    process.stderr.write(`echo ${node}: ${error.message}\n`);
    process.exit(1);
  });
  socket.bind({ port, address: vip }, () => process.stdout.write("listening\n"));
}

function probe(vip: string, port: number, intervalMs: number): void {
  const socket = createSocket("udp4");
  let seq = 0;
  socket.on("message", (message, remote) => {
    const receivedAtMs = Date.now();
    const [sent, sentAtMs, node] = message.toString().split(" ");
    process.stdout.write(`${sent} ${sentAtMs} ${receivedAtMs} ${node} ${remote.address}\n`);
  });
  // A datagram to an address nobody resolves fails quietly or with an error here; either way it is a probe
  // without an answer, which is what the bench counts.
  socket.on("error", () => {});
  socket.bind(0, () => {
    setInterval(() => {
      seq += 1;
      socket.send(`${seq} ${Date.now()}`, port, vip, () => {});
    }, intervalMs);
  });
}

const [mode, ...args] = process.argv.slice(2);
exitWithParent();
if (mode === "echo" && args.length === 3) echo(args[0] as string, args[1] as string, Number(args[2]));
else if (mode === "probe" && args.length === 3) probe(args[0] as string, Number(args[1]), Number(args[2]));
else {
  process.stderr.write("usage: services_udp.ts echo NODE VIP PORT | probe VIP PORT INTERVAL_MS\n");
  process.exit(2);
}
