// One DNS request, one response, over UDP or TCP (RFC 1035 4.2, RFC 7766), bounded by a deadline. No
// retries here: the service runner retries a failed start.
import { createSocket } from "node:dgram";
import { connect, isIPv6 } from "node:net";
import { formatHostPort, type HostPort } from "../config/index.ts";

export type DnsServer = HostPort;

export class DnsTransportError extends Error {
  override name = "DnsTransportError";
}

const describeServer = formatHostPort;

function remainingMs(deadline: number, server: DnsServer, transport: string): number {
  const left = Math.ceil(deadline - performance.now());
  if (left <= 0)
    throw new DnsTransportError(`no answer from ${describeServer(server)} over ${transport} in time`);
  return left;
}

/**
 * Sends `request` in one datagram and waits for the datagram that answers it (a response with its id);
 * any other datagram is ignored. `deadline` is on performance.now()'s clock.
 */
export async function exchangeUdp(server: DnsServer, request: Buffer, deadline: number): Promise<Buffer> {
  const waitMs = remainingMs(deadline, server, "UDP");
  const id = request.readUInt16BE(0);
  return new Promise((resolve, reject) => {
    const socket = createSocket(isIPv6(server.host) ? "udp6" : "udp4");
    let settled = false;
    const finish = (error: Error | null, response?: Buffer) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.close();
      if (error === null) resolve(response!);
      else reject(error);
    };
    const timer = setTimeout(
      () =>
        finish(new DnsTransportError(`no answer from ${describeServer(server)} over UDP in ${waitMs} ms`)),
      waitMs,
    );
    socket.on("error", (error) =>
      finish(new DnsTransportError(`UDP to ${describeServer(server)}: ${error.message}`)),
    );
    socket.on("message", (message) => {
      // The socket is connected, so only the server's datagrams arrive; a late answer to an earlier
      // request (another id) or a query echoed back (QR clear) is not ours.
      if (message.length >= 12 && message.readUInt16BE(0) === id && (message[2]! & 0x80) !== 0) {
        finish(null, message);
      }
    });
    socket.connect(server.port, server.host, () => {
      socket.send(request, (error) => {
        if (error) finish(new DnsTransportError(`UDP to ${describeServer(server)}: ${error.message}`));
      });
    });
  });
}

/**
 * Sends `request` over a new TCP connection (two-byte length prefix) and reads one response. On the
 * deadline the connection is reset, not closed: what is still in our send buffer is dropped instead of
 * reaching the server later.
 */
export async function exchangeTcp(server: DnsServer, request: Buffer, deadline: number): Promise<Buffer> {
  const waitMs = remainingMs(deadline, server, "TCP");
  const id = request.readUInt16BE(0);
  return new Promise((resolve, reject) => {
    const socket = connect({ host: server.host, port: server.port, noDelay: true });
    const chunks: Buffer[] = [];
    let received = 0;
    let settled = false;
    const finish = (error: Error | null, response?: Buffer) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (error === null) {
        socket.destroy();
        resolve(response!);
      } else {
        // Still connecting: nothing was sent, and resetAndDestroy would wait for the connection.
        if (socket.connecting || socket.destroyed) socket.destroy();
        else socket.resetAndDestroy();
        reject(error);
      }
    };
    const timer = setTimeout(
      () =>
        finish(new DnsTransportError(`no answer from ${describeServer(server)} over TCP in ${waitMs} ms`)),
      waitMs,
    );
    socket.on("error", (error) =>
      finish(new DnsTransportError(`TCP to ${describeServer(server)}: ${error.message}`)),
    );
    socket.on("close", () =>
      finish(new DnsTransportError(`${describeServer(server)} closed the TCP connection without an answer`)),
    );
    socket.on("connect", () => {
      const length = Buffer.alloc(2);
      length.writeUInt16BE(request.length);
      socket.write(Buffer.concat([length, request]));
    });
    socket.on("data", (chunk: Buffer) => {
      chunks.push(chunk);
      received += chunk.length;
      if (received < 2) return;
      const all = Buffer.concat(chunks);
      const length = all.readUInt16BE(0);
      if (all.length < 2 + length) return;
      const response = all.subarray(2, 2 + length);
      if (length < 12 || response.readUInt16BE(0) !== id) {
        finish(new DnsTransportError(`${describeServer(server)} answered over TCP with another message id`));
      } else finish(null, response);
    });
  });
}
