export { aclDecide, compileAcl } from "./acl.ts";
export { type BackupView, backupRoutes } from "./backup_routes.ts";
export { type BlobView, blobRoutes } from "./blob_routes.ts";
export { ApiErrorCode, sendError, sendJson } from "./errors.ts";
export { eventsRoute } from "./events_route.ts";
export { InflightLimit } from "./inflight_limit.ts";
export { type JournalView, journalRoutes } from "./journal_routes.ts";
export { NonLoopbackError, startLocalApi } from "./local_listener.ts";
export {
  type MemberChangeJson,
  type MemberJson,
  type MemberRoutesOptions,
  type MembershipControl,
  type MembersJson,
  memberRoutes,
} from "./member_routes.ts";
export { type ProvisionView, provisionRoutes } from "./provision_routes.ts";
export {
  type ApiDependencies,
  type ApiIdentity,
  type ApiRoute,
  type ApiRouter,
  createApiRouter,
  inflightMaxDefault,
  type RouteContext,
  type RouteHandler,
} from "./router.ts";
export {
  type ServiceJson,
  type ServicesJson,
  type ServicesView,
  serviceRoutes,
  servicesJson,
} from "./service_routes.ts";
export { type StoreRoutesOptions, storeRoutes } from "./store_routes.ts";
export type { EntryJson, WriteOutcomeJson } from "./store_wire.ts";
export {
  createToken,
  readTokensFile,
  revokeToken,
  TokenNameError,
  TokensFile,
  TokensFileError,
} from "./tokens.ts";
