// The plain connection spec the rollout's dynamic provider connects with. Resolved at program time from a kubeconfig
// (rollout/resolveConnection.ts) and handed to the resource as a *secret* input, so the provider itself never loads a
// kubeconfig library. Node built-ins only: the serialized provider imports this file.

/** An exec credential plugin, as in a kubeconfig's `users[].user.exec` (client.authentication.k8s.io). */
export interface ExecCredentialConfig {
  command: string;
  args?: string[];
  env?: { name: string; value: string }[];
  /** `client.authentication.k8s.io/v1` or `v1beta1`; sent back to the plugin in KUBERNETES_EXEC_INFO. */
  apiVersion?: string;
  installHint?: string;
}

export interface ConnectionSpec {
  /** `https://host:port` (or `http://` for a local proxy / test server). */
  server: string;
  /** PEM text of the CA bundle that signs the API server's certificate. */
  caData?: string;
  insecureSkipTlsVerify?: boolean;
  tlsServerName?: string;
  /** A static bearer token. */
  token?: string;
  /** A file holding a bearer token, re-read on use (in-cluster ServiceAccount tokens rotate). */
  tokenFile?: string;
  /** PEM client certificate and key. */
  clientCertificateData?: string;
  clientKeyData?: string;
  username?: string;
  password?: string;
  exec?: ExecCredentialConfig;
  /** Where the spec came from, for messages (never a credential): `kubeconfig argument`, `$KUBECONFIG`, ... */
  source?: string;
  /** The kubeconfig context it was resolved from, for messages. */
  context?: string;
}

/** Problems with a spec, each naming the field and what would be valid; empty when it is usable. */
export function connectionSpecErrors(spec: Partial<ConnectionSpec> | undefined): string[] {
  if (!spec || typeof spec !== "object") return ["connection: expected an object with at least `server`"];
  const errors: string[] = [];
  if (typeof spec.server !== "string" || !/^https?:\/\/[^/]+/.test(spec.server)) {
    errors.push("connection.server: expected an http:// or https:// URL of the Kubernetes API server");
  }
  if (!!spec.clientCertificateData !== !!spec.clientKeyData) {
    errors.push(
      "connection.clientCertificateData/clientKeyData: give both the certificate and its key, or neither",
    );
  }
  if (spec.exec && (typeof spec.exec.command !== "string" || spec.exec.command === "")) {
    errors.push("connection.exec.command: expected the credential plugin's command");
  }
  if (!!spec.username !== !!spec.password) {
    errors.push("connection.username/password: give both or neither");
  }
  return errors;
}

/** Human description of a spec that carries no credential: `https://x:6443 (context ci, $KUBECONFIG)`. */
export function describeConnection(spec: ConnectionSpec): string {
  const where = [spec.context ? `context ${spec.context}` : undefined, spec.source]
    .filter(Boolean)
    .join(", ");
  return where ? `${spec.server} (${where})` : spec.server;
}
