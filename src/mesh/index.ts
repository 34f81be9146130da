// Public surface of the mesh; everything else in this folder is internal.

export { SafeEmitter } from "./emitter.ts";
export {
  BackpressureError,
  HandshakeError,
  meshErrors,
  PeerUnreachableError,
  ProtocolError,
  RemoteError,
  TimeoutError,
} from "./errors.ts";
export { decodeJsonPayload, encodeJsonPayload, type JsonPayloadResult } from "./json_payload.ts";
export { answerHttpClientError } from "./http_client_error.ts";
export { DEFAULT_MESH_LIMITS } from "./limits.ts";
export { MESH_PATH, Mesh } from "./mesh.ts";
export type * from "./types.ts";
