export { aclDecide, compileAcl } from "./acl.ts";
export { ApiErrorCode, sendError, sendJson } from "./errors.ts";
export { NonLoopbackError, startLocalApi } from "./local_listener.ts";
export { type ApiDependencies, type ApiIdentity, type ApiRouter, createApiRouter } from "./router.ts";
