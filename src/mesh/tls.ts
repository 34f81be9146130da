// TLS settings per security mode, for the listener and for dialers, and the authenticated identity of a
// socket. Both modes are TLS 1.3 only; certificate checks are OpenSSL's, identity checks are explicit.
import type { ConnectionOptions, PeerCertificate, TLSSocket } from "node:tls";
import type { NodeId } from "../core/types.ts";
import type { ClientIdentity, MeshSecurity } from "./types.ts";

const PSK_CIPHERS = "TLS_AES_128_GCM_SHA256";
/** OID of the serverAuth extended key usage: node certificates carry it, client (API) certificates do not. */
const SERVER_AUTH_OID = "1.3.6.1.5.5.7.3.1";
const PSK_IDENTITY_CHARS_MAX = 128;

export type DialTlsOptions = Pick<
  ConnectionOptions,
  | "minVersion"
  | "ca"
  | "cert"
  | "key"
  | "rejectUnauthorized"
  | "checkServerIdentity"
  | "ciphers"
  | "pskCallback"
>;

export interface ServerTlsOptions {
  minVersion: "TLSv1.3";
  key?: string;
  cert?: string;
  ca?: string;
  requestCert?: boolean;
  rejectUnauthorized?: boolean;
  ciphers?: string;
  pskCallback?: (socket: TLSSocket, identity: string) => Buffer | null;
}

/** The listener's TLS settings and the identity of each of its sockets once the handshake is done. */
export class ServerTls {
  private readonly security: MeshSecurity;
  private readonly pskIdentities = new WeakMap<TLSSocket, string>();

  constructor(security: MeshSecurity) {
    this.security = security;
  }

  options(): ServerTlsOptions {
    if (this.security.mode === "mtls") {
      return {
        minVersion: "TLSv1.3",
        key: this.security.keyPem,
        cert: this.security.certPem,
        ca: this.security.caCertPem,
        requestCert: true,
        rejectUnauthorized: true,
      };
    }
    const key = this.security.key;
    return {
      minVersion: "TLSv1.3",
      ciphers: PSK_CIPHERS,
      pskCallback: (socket, identity) => {
        if (identity.length === 0 || identity.length > PSK_IDENTITY_CHARS_MAX) return null;
        this.pskIdentities.set(socket, identity);
        return key;
      },
    };
  }

  /** The authenticated identity of a socket, or null (no certificate, or a certificate without a CN). */
  identity(socket: TLSSocket): ClientIdentity | null {
    if (this.security.mode === "psk") {
      const name = this.pskIdentities.get(socket);
      return name === undefined ? null : { kind: "psk", name };
    }
    const name = commonName(socket.getPeerCertificate());
    return name === null ? null : { kind: "certificate", name };
  }

  /** Whether the socket's credentials may act as a node (not only as an API client). */
  isNodeCredential(socket: TLSSocket): boolean {
    if (this.security.mode === "psk") return true;
    return isNodeCertificate(socket.getPeerCertificate());
  }
}

function isNodeCertificate(certificate: PeerCertificate): boolean {
  return certificate.ext_key_usage?.includes(SERVER_AUTH_OID) ?? false;
}

function commonName(certificate: PeerCertificate): string | null {
  const cn: unknown = certificate.subject?.CN;
  return typeof cn === "string" && cn.length > 0 ? cn : null;
}

/** TLS options for dialing `peer`: in mtls the server certificate's CN must be the peer id. */
export function dialTlsOptions(security: MeshSecurity, selfId: NodeId, peer: NodeId): DialTlsOptions {
  return dialOptions(security, selfId, (certificate) => {
    const cn = commonName(certificate);
    return cn === peer ? undefined : new Error(`server certificate CN ${cn ?? "(none)"} is not ${peer}`);
  });
}

/** A dial to an address whose node is not known in advance (Mesh.requestAt). */
export interface AddressDialTls {
  options: DialTlsOptions;
  /**
   * The node id the hello-ok must carry, read when it arrives. mtls: the CN of the server certificate,
   * which TLS checked before any frame could come. psk: null, any node may answer, because the key proves
   * membership of the cluster, not an id (a dial to a known peer trusts the hello-ok's id the same way).
   */
  expectedPeer(): NodeId | null;
}

/** In mtls any node certificate from the cluster CA passes, as the acceptor requires of dialers. */
export function addressDialTls(security: MeshSecurity, selfId: NodeId): AddressDialTls {
  if (security.mode === "psk")
    return { options: dialOptions(security, selfId, () => undefined), expectedPeer: () => null };
  let serverName: NodeId | null = null;
  const options = dialOptions(security, selfId, (certificate) => {
    if (!isNodeCertificate(certificate)) return new Error("server certificate is not a node credential");
    serverName = commonName(certificate);
    return serverName === null ? new Error("server certificate has no CN") : undefined;
  });
  const expectedPeer = (): NodeId => {
    if (serverName === null) throw new Error("mesh: hello-ok before the server certificate was checked");
    return serverName;
  };
  return { options, expectedPeer };
}

/** `checkServer` runs on the server certificate once it chains to the cluster CA (mtls only). */
function dialOptions(
  security: MeshSecurity,
  selfId: NodeId,
  checkServer: (certificate: PeerCertificate) => Error | undefined,
): DialTlsOptions {
  if (security.mode === "mtls") {
    return {
      minVersion: "TLSv1.3",
      ca: security.caCertPem,
      cert: security.certPem,
      key: security.keyPem,
      rejectUnauthorized: true,
      checkServerIdentity: (_host, certificate) => checkServer(certificate),
    };
  }
  const key = security.key;
  return {
    minVersion: "TLSv1.3",
    ciphers: PSK_CIPHERS,
    pskCallback: () => ({ psk: key, identity: selfId }),
    // PSK authenticates both ends; there is no certificate to check.
    checkServerIdentity: () => undefined,
  };
}
