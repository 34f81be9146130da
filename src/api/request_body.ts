// Reads a request body with a hard byte bound: the declared Content-Length is checked before reading, the
// bytes actually received while reading, so a lying or chunked client cannot make the node buffer more.
import type { IncomingMessage } from "node:http";

export type BodyResult =
  | { ok: true; bytes: Buffer }
  | { ok: false; tooLarge: true }
  | { ok: false; tooLarge: false; error: Error };

export function readBody(req: IncomingMessage, bytesMax: number): Promise<BodyResult> {
  const declared = Number(req.headers["content-length"]);
  if (Number.isFinite(declared) && declared > bytesMax) return Promise.resolve({ ok: false, tooLarge: true });
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let received = 0;
    const finish = (result: BodyResult) => {
      req.off("data", onData);
      req.off("end", onEnd);
      req.off("error", onError);
      resolve(result);
    };
    const onData = (chunk: Buffer) => {
      received += chunk.length;
      if (received > bytesMax) {
        req.pause();
        return finish({ ok: false, tooLarge: true });
      }
      chunks.push(chunk);
    };
    const onEnd = () => finish({ ok: true, bytes: Buffer.concat(chunks, received) });
    const onError = (error: Error) => finish({ ok: false, tooLarge: false, error });
    req.on("data", onData);
    req.on("end", onEnd);
    req.on("error", onError);
  });
}
