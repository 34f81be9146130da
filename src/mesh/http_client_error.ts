// Answers a request that Node's HTTP parser refused before any handler saw it (request line and headers
// over the server's header size limit, a malformed request line or header) with the API's typed JSON error
// instead of Node's bare status line. The connection is closed: after a parse error nothing more on it can
// be trusted to start where a request starts.
import type { ServerResponse } from "node:http";
import type { Duplex } from "node:stream";

/** Status, reason phrase and error code for a parser error code. */
function refusalOf(code: string | undefined): {
  status: number;
  reason: string;
  code: string;
  message: string;
} {
  if (code === "HPE_HEADER_OVERFLOW") {
    return {
      status: 431,
      reason: "Request Header Fields Too Large",
      code: "headers_too_large",
      message: "the request line and headers are larger than this server accepts (is the URL too long?)",
    };
  }
  if (code === "ERR_HTTP_REQUEST_TIMEOUT") {
    return {
      status: 408,
      reason: "Request Timeout",
      code: "request_timeout",
      message: "the request did not arrive in time",
    };
  }
  return {
    status: 400,
    reason: "Bad Request",
    code: "bad_request",
    message: `malformed HTTP request (${code ?? "unparsable"})`,
  };
}

/** A server's 'clientError' listener: `server.on("clientError", answerHttpClientError)`. */
export function answerHttpClientError(error: Error & { code?: string }, socket: Duplex): void {
  // A response already under way on this socket cannot be followed by another status line.
  const inProgress = (socket as Duplex & { _httpMessage?: ServerResponse })._httpMessage;
  if (error.code === "ECONNRESET" || !socket.writable || inProgress?.headersSent) {
    socket.destroy();
    return;
  }
  const refusal = refusalOf(error.code);
  const body = JSON.stringify({ error: { code: refusal.code, message: refusal.message } });
  socket.end(
    `HTTP/1.1 ${refusal.status} ${refusal.reason}\r\n` +
      "Content-Type: application/json; charset=utf-8\r\n" +
      `Content-Length: ${Buffer.byteLength(body)}\r\n` +
      "Cache-Control: no-store\r\nConnection: close\r\n\r\n" +
      body,
  );
}
