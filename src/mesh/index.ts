// Public surface of the mesh; everything else in this folder is internal.

export {
  BackpressureError,
  HandshakeError,
  meshErrors,
  PeerUnreachableError,
  ProtocolError,
  RemoteError,
  TimeoutError,
} from "./errors.ts";
export { answerHttpClientError } from "./http_client_error.ts";
export { decodeJsonPayload, encodeJsonPayload, type JsonPayloadResult } from "./json_payload.ts";
export { DEFAULT_MESH_LIMITS } from "./limits.ts";
export { MESH_PATH, Mesh } from "./mesh.ts";
export type * from "./types.ts";
