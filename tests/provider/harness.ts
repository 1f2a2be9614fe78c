// A provider-protocol harness: starts the processes the Pulumi engine starts for this package — the package's own
// plugin (`@pulumi/pulumi/cmd/run-plugin` on this folder, what PulumiPlugin.yaml's nodejs runtime runs) and the
// dynamic-provider host (`@pulumi/pulumi/cmd/dynamic-provider`, what `pulumi-resource-pulumi-nodejs` runs) — and
// talks Pulumi's gRPC provider protocol to them with @pulumi/pulumi's generated stubs. It also serves the engine's
// side (ResourceMonitor and the Engine log service) and records every registration and log line.
//
// Wire format, as the engine sends it: google.protobuf.Struct values; secrets as objects carrying the secret
// signature; unknowns as the unknown sentinel (see `secret`, `UNKNOWN`).
import { spawn, type ChildProcess } from "node:child_process";
import { createRequire } from "node:module";
import * as path from "node:path";
import type * as grpcTypes from "@grpc/grpc-js";
import * as provproto from "@pulumi/pulumi/proto/provider_pb";
import type * as provrpcTypes from "@pulumi/pulumi/proto/provider_grpc_pb";
import * as resproto from "@pulumi/pulumi/proto/resource_pb";
import type * as engineproto from "@pulumi/pulumi/proto/engine_pb";
import { Struct } from "google-protobuf/google/protobuf/struct_pb";
import { Empty } from "google-protobuf/google/protobuf/empty_pb";

export const REPO_DIR = path.resolve(__dirname, "..", "..");
const PULUMI_DIR = path.dirname(require.resolve("@pulumi/pulumi/package.json"));
/** gRPC and the stubs from @pulumi/pulumi's own resolution, so client, server and messages share one instance. */
const pulumiRequire = createRequire(path.join(PULUMI_DIR, "package.json"));
const grpc = pulumiRequire("@grpc/grpc-js") as typeof grpcTypes;
const provrpc = pulumiRequire("./proto/provider_grpc_pb") as typeof provrpcTypes;
const resrpc = pulumiRequire("./proto/resource_grpc_pb") as {
  ResourceMonitorService: grpcTypes.ServiceDefinition;
};
const enginerpc = pulumiRequire("./proto/engine_grpc_pb") as { EngineService: grpcTypes.ServiceDefinition };

/** The engine's wire sentinels (sdk/nodejs/runtime/rpc.ts). */
export const SIG_KEY = "4dabf18193072939515e22adb298388d";
export const SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270";
export const UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9";

export type Wire = null | boolean | number | string | Wire[] | { [k: string]: Wire };

/** A secret value as the engine sends it to a provider that accepts secrets. */
export function secret(value: Wire): Wire {
  return { [SIG_KEY]: SECRET_SIG, value };
}

export function isSecret(value: unknown): value is { value: Wire } {
  return !!value && typeof value === "object" && (value as Record<string, unknown>)[SIG_KEY] === SECRET_SIG;
}

/** Drops every secret wrapper (what a reader of the state with the stack's key sees). */
export function revealed(value: unknown): unknown {
  if (isSecret(value)) return revealed(value.value);
  if (Array.isArray(value)) return value.map(revealed);
  if (value && typeof value === "object")
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, revealed(v)]));
  return value;
}

/**
 * The Rollout that runs after the chart (post-install hooks and the per-node wait), among a component's Rollout
 * registrations: the other one is the release hooks' side (`chartSide: "before"`).
 */
export function afterChart(rollouts: Registration[]): Registration {
  const after = rollouts.filter((r) => (revealed(r.object) as { chartSide?: string }).chartSide !== "before");
  if (after.length !== 1) throw new Error(`expected one rollout after the chart, found ${after.length}`);
  return after[0];
}

function toStruct(value: Record<string, unknown>): Struct {
  return Struct.fromJavaScript(value as Record<string, Wire>);
}

/** One RegisterResource the monitor received, decoded. */
export interface Registration {
  urn: string;
  type: string;
  name: string;
  parent: string;
  custom: boolean;
  remote: boolean;
  provider: string;
  providers: Record<string, string>;
  version: string;
  dependencies: string[];
  propertyDependencies: Record<string, string[]>;
  additionalSecretOutputs: string[];
  /** The inputs as sent: secrets still wrapped. */
  object: Record<string, unknown>;
}

export interface LogLine {
  severity: number;
  message: string;
  urn: string;
}

/**
 * What the engine answers for a custom resource: by default its inputs echoed as outputs with a made-up id; a test
 * may drive a real provider instead (e.g. Check + Create on the plugin) by setting `Monitor.onCustom`.
 */
export type CustomHandler = (reg: Registration) => Promise<{ id: string; outputs: Record<string, unknown> }>;

/** The engine side a construct talks to: ResourceMonitor and Engine services on one loopback port. */
export class EngineSide {
  readonly registrations: Registration[] = [];
  readonly outputs = new Map<string, Record<string, unknown>>();
  readonly logs: LogLine[] = [];
  /** Resources the engine knows (registered, or declared by a test such as the caller's provider): urn → id, state. */
  readonly resources = new Map<string, { id: string; state: Record<string, unknown> }>();
  /** Every Invoke: its token and arguments. */
  readonly invokes: { token: string; args: Record<string, unknown> }[] = [];
  /** Monitor and engine methods a plugin called that this engine does not serve. */
  readonly unserved: string[] = [];
  onCustom?: CustomHandler;
  /** Answers an Invoke the engine would route to a provider (e.g. `kubernetes:helm:template`); undefined: unknown. */
  onInvoke?: (token: string, args: Record<string, unknown>) => Record<string, unknown> | undefined;
  /** Answers ReadResource (a `.get`): the live object's properties, as the resource's provider reads them. */
  onRead?: (req: {
    type: string;
    name: string;
    id: string;
    provider: string;
    parent: string;
  }) => Promise<Record<string, unknown>>;
  /** Every ReadResource: type, name, id and provider reference. */
  readonly reads: { type: string; name: string; id: string; provider: string }[] = [];
  /** Called for each component registration (e.g. to apply a remote Chart's objects to the cluster of its provider). */
  onComponent?: (reg: Registration) => Promise<void>;
  private server?: grpcTypes.Server;
  address = "";

  constructor(
    readonly project = "proj",
    readonly stack = "dev",
    /** Features the monitor claims (as the engine answers SupportsFeature). */
    readonly features: ReadonlySet<string> = new Set(["secrets"]),
  ) {}

  urnOf(parent: string, type: string, name: string): string {
    const parentType = parent ? parent.split("::")[2] : "";
    const qualified =
      parentType && !parentType.startsWith("pulumi:pulumi:Stack") ? `${parentType}$${type}` : type;
    return `urn:pulumi:${this.stack}::${this.project}::${qualified}::${name}`;
  }

  async start(): Promise<string> {
    const server = new grpc.Server();
    const unary =
      <Req, Res>(handler: (req: Req) => Promise<Res> | Res) =>
      (call: { request: Req }, callback: (err: unknown, res?: Res) => void) => {
        Promise.resolve()
          .then(() => handler(call.request))
          .then(
            (res) => callback(null, res),
            (err: unknown) => callback({ code: grpc.status.UNKNOWN, details: String(err) }),
          );
      };
    const unimplemented = (method: string) => (_call: unknown, callback: (err: unknown) => void) => {
      this.unserved.push(method);
      callback({ code: grpc.status.UNIMPLEMENTED, details: `${method}: not served by the test engine` });
    };
    const monitor: Record<string, unknown> = {};
    for (const method of Object.keys(resrpc.ResourceMonitorService)) monitor[method] = unimplemented(method);
    Object.assign(monitor, {
      supportsFeature: unary((req: resproto.SupportsFeatureRequest) => {
        const res = new resproto.SupportsFeatureResponse();
        res.setHassupport(this.features.has(req.getId()));
        return res;
      }),
      registerResource: unary((req: resproto.RegisterResourceRequest) => this.register(req)),
      invoke: unary((req: resproto.ResourceInvokeRequest) => {
        const args = (req.getArgs()?.toJavaScript() ?? {}) as Record<string, unknown>;
        this.invokes.push({ token: req.getTok(), args });
        const res = new resproto.ResourceInvokeResponse();
        // The SDK rehydrates resource references (e.g. the caller's provider) with this built-in invoke.
        const known =
          req.getTok() === "pulumi:pulumi:getResource" ? this.resources.get(String(args.urn)) : undefined;
        const answered = known ? undefined : this.onInvoke?.(req.getTok(), args);
        if (known) {
          res.setReturn(toStruct({ urn: args.urn, id: known.id, state: known.state }));
        } else if (answered) {
          res.setReturn(toStruct(answered));
        } else {
          const failure = new provproto.CheckFailure();
          failure.setProperty("urn");
          failure.setReason(`${req.getTok()}: unknown to the test engine (${String(args.urn ?? "")})`);
          res.setFailuresList([failure]);
        }
        return res;
      }),
      readResource: unary(async (req: resproto.ReadResourceRequest) => {
        const read = {
          type: req.getType(),
          name: req.getName(),
          id: req.getId(),
          provider: req.getProvider(),
          parent: req.getParent(),
        };
        this.reads.push(read);
        if (!this.onRead)
          throw new Error(`ReadResource ${read.type} ${read.id}: not served by this test engine`);
        const properties = await this.onRead(read);
        const res = new resproto.ReadResourceResponse();
        res.setUrn(this.urnOf(read.parent, read.type, read.name));
        res.setProperties(toStruct(properties));
        return res;
      }),
      registerResourceOutputs: unary((req: resproto.RegisterResourceOutputsRequest) => {
        this.outputs.set(req.getUrn(), req.getOutputs()?.toJavaScript() ?? {});
        return new Empty();
      }),
    });
    const engine: Record<string, unknown> = {};
    for (const method of Object.keys(enginerpc.EngineService)) engine[method] = unimplemented(method);
    Object.assign(engine, {
      log: unary((req: engineproto.LogRequest) => {
        this.logs.push({ severity: req.getSeverity(), message: req.getMessage(), urn: req.getUrn() });
        return new Empty();
      }),
    });
    server.addService(resrpc.ResourceMonitorService, monitor as grpcTypes.UntypedServiceImplementation);
    server.addService(enginerpc.EngineService, engine as grpcTypes.UntypedServiceImplementation);
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (err, p) =>
        err ? reject(err) : resolve(p),
      ),
    );
    this.server = server;
    this.address = `127.0.0.1:${port}`;
    return this.address;
  }

  private async register(req: resproto.RegisterResourceRequest): Promise<resproto.RegisterResourceResponse> {
    const propertyDependencies: Record<string, string[]> = {};
    for (const [k, v] of req.getPropertydependenciesMap().entries())
      propertyDependencies[k] = v.getUrnsList();
    const providers: Record<string, string> = {};
    for (const [k, v] of req.getProvidersMap().entries()) providers[k] = v;
    const reg: Registration = {
      urn: this.urnOf(req.getParent(), req.getType(), req.getName()),
      type: req.getType(),
      name: req.getName(),
      parent: req.getParent(),
      custom: req.getCustom(),
      remote: req.getRemote(),
      provider: req.getProvider(),
      providers,
      version: req.getVersion(),
      dependencies: req.getDependenciesList(),
      propertyDependencies,
      additionalSecretOutputs: req.getAdditionalsecretoutputsList(),
      object: req.getObject()?.toJavaScript() ?? {},
    };
    this.registrations.push(reg);
    const res = new resproto.RegisterResourceResponse();
    res.setUrn(reg.urn);
    if (reg.custom) {
      const { id, outputs } = this.onCustom
        ? await this.onCustom(reg)
        : { id: `${reg.name}-id`, outputs: reg.object };
      res.setId(id);
      res.setObject(toStruct(outputs));
      this.resources.set(reg.urn, { id, state: outputs });
    } else {
      await this.onComponent?.(reg);
      res.setObject(toStruct({}));
    }
    return res;
  }

  registrationsOf(type: string): Registration[] {
    return this.registrations.filter((r) => r.type === type);
  }

  async stop(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (server) await new Promise<void>((resolve) => server.tryShutdown(() => resolve()));
  }
}

/** A provider plugin process and a typed client for it. */
export interface ProviderProcess {
  readonly child: ChildProcess;
  readonly address: string;
  /** Everything the process wrote to stderr so far. */
  stderr(): string;
  client: provrpcTypes.ResourceProviderClient;
  stop(): Promise<void>;
}

export interface StartOptions {
  /** The engine address passed as the plugin's argument. */
  engineAddress: string;
  /** How long the process may take to announce its port. */
  startTimeoutMs: number;
  env?: Record<string, string>;
  /** The node binary (default: the one running the tests). */
  node?: string;
}

/** What the engine runs for each kind of plugin (pulumi-language-nodejs RunPlugin; pulumi-resource-pulumi-nodejs). */
export function pluginCommand(kind: "package" | "dynamic"): string[] {
  return kind === "package"
    ? [pulumiRequire.resolve("./cmd/run-plugin"), REPO_DIR]
    : [pulumiRequire.resolve("./cmd/dynamic-provider")];
}

/**
 * Starts a plugin and waits (bounded) for the port it prints on its first stdout line — the handshake every Pulumi
 * plugin speaks: `console.log(port)` once its gRPC server listens on 127.0.0.1.
 */
export async function startProvider(kind: "package" | "dynamic", o: StartOptions): Promise<ProviderProcess> {
  const child = spawn(o.node ?? process.execPath, [...pluginCommand(kind), o.engineAddress], {
    cwd: REPO_DIR,
    // The nodejs language host sets PULUMI_NODEJS_TYPESCRIPT for TypeScript plugins (the default runtime option).
    env: { ...process.env, PULUMI_NODEJS_TYPESCRIPT: "true", ...(o.env ?? {}) },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let err = "";
  child.stderr.setEncoding("utf8").on("data", (d: string) => (err += d));
  // Never outlive the test process, whatever happens to the suite.
  const killOnExit = () => child.kill("SIGKILL");
  process.once("exit", killOnExit);
  child.once("exit", () => process.removeListener("exit", killOnExit));
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
    child.kill("SIGTERM");
    const timer = setTimeout(() => child.kill("SIGKILL"), 5_000);
    await exited;
    clearTimeout(timer);
  };
  const port = await new Promise<number>((resolve, reject) => {
    let out = "";
    const timer = setTimeout(
      () =>
        reject(new Error(`${kind} plugin announced no port within ${o.startTimeoutMs} ms; stderr:\n${err}`)),
      o.startTimeoutMs,
    );
    child.stdout.setEncoding("utf8").on("data", (d: string) => {
      out += d;
      const line = out.split("\n")[0];
      if (out.includes("\n") && /^\d+$/.test(line.trim())) {
        clearTimeout(timer);
        resolve(Number(line.trim()));
      }
    });
    child.once("exit", (code, signal) => {
      clearTimeout(timer);
      reject(
        new Error(`${kind} plugin exited (${code ?? signal}) before announcing a port; stderr:\n${err}`),
      );
    });
  }).catch(async (e: unknown) => {
    await stop();
    throw e;
  });
  const address = `127.0.0.1:${port}`;
  // The engine's gRPC client (grpc-go) accepts up to 16 MiB of metadata; grpc-js's 8 KiB default would drop the
  // ErrorResourceInitFailed detail (the outputs of a failed create) of a fleet of a few hundred nodes.
  const client = new provrpc.ResourceProviderClient(address, grpc.credentials.createInsecure(), {
    "grpc.max_metadata_size": 16 * 1024 * 1024,
  });
  return {
    child,
    address,
    stderr: () => err,
    client,
    stop: async () => {
      client.close();
      await stop();
    },
  };
}

type Unary<Req, Res> = (
  req: Req,
  md: grpcTypes.Metadata,
  opts: Partial<grpcTypes.CallOptions>,
  cb: (e: grpcTypes.ServiceError | null, r: Res) => void,
) => unknown;

/** One unary call with a deadline. */
export function call<Req, Res>(
  client: provrpcTypes.ResourceProviderClient,
  method: Unary<Req, Res>,
  req: Req,
  timeoutMs: number,
): Promise<Res> {
  return new Promise((resolve, reject) =>
    method.call(client, req, new grpc.Metadata(), { deadline: Date.now() + timeoutMs }, (e, r) =>
      e ? reject(e) : resolve(r),
    ),
  );
}

/** The ErrorResourceInitFailed detail of a failed Create/Update (the resource was created, with these outputs). */
export function initFailure(
  err: unknown,
): { id: string; properties: Record<string, unknown>; reasons: string[] } | undefined {
  const bin = (err as grpcTypes.ServiceError).metadata?.get("grpc-status-details-bin")?.[0];
  if (!bin) return undefined;
  const statusproto = pulumiRequire("./proto/status_pb") as {
    Status: { deserializeBinary(b: Uint8Array): { getDetailsList(): { getValue_asU8(): Uint8Array }[] } };
  };
  for (const detail of statusproto.Status.deserializeBinary(bin as Buffer).getDetailsList()) {
    const failed = provproto.ErrorResourceInitFailed.deserializeBinary(detail.getValue_asU8());
    return {
      id: failed.getId(),
      properties: failed.getProperties()?.toJavaScript() ?? {},
      reasons: failed.getReasonsList(),
    };
  }
  return undefined;
}

/** Typed calls of the provider protocol, as the engine makes them. */
export class ProviderClient {
  constructor(
    readonly process: ProviderProcess,
    readonly timeoutMs = 120_000,
  ) {}

  private get c() {
    return this.process.client;
  }

  async configure(acceptSecrets = true): Promise<provproto.ConfigureResponse> {
    const req = new provproto.ConfigureRequest();
    req.setAcceptsecrets(acceptSecrets);
    req.setAcceptresources(true);
    req.setArgs(toStruct({}));
    return call(this.c, this.c.configure, req, this.timeoutMs);
  }

  async pluginInfo(): Promise<string> {
    return (await call(this.c, this.c.getPluginInfo, new Empty(), this.timeoutMs)).getVersion();
  }

  async getSchema(): Promise<Record<string, unknown>> {
    const res = await call(this.c, this.c.getSchema, new provproto.GetSchemaRequest(), this.timeoutMs);
    return JSON.parse(res.getSchema()) as Record<string, unknown>;
  }

  async check(
    urn: string,
    olds: Record<string, unknown>,
    news: Record<string, unknown>,
  ): Promise<{ inputs: Record<string, unknown>; failures: { property: string; reason: string }[] }> {
    const req = new provproto.CheckRequest();
    req.setUrn(urn);
    req.setOlds(toStruct(olds));
    req.setNews(toStruct(news));
    const res = await call(this.c, this.c.check, req, this.timeoutMs);
    return {
      inputs: res.getInputs()?.toJavaScript() ?? {},
      failures: res.getFailuresList().map((f) => ({ property: f.getProperty(), reason: f.getReason() })),
    };
  }

  async diff(
    urn: string,
    id: string,
    olds: Record<string, unknown>,
    news: Record<string, unknown>,
  ): Promise<"none" | "some" | "unknown"> {
    return (await this.diffResponse(urn, id, olds, news)).changes;
  }

  /** Diff with what the engine reads besides `changes`: properties that force a replacement, and its order. */
  async diffResponse(
    urn: string,
    id: string,
    olds: Record<string, unknown>,
    news: Record<string, unknown>,
  ): Promise<{ changes: "none" | "some" | "unknown"; replaces: string[]; deleteBeforeReplace: boolean }> {
    const req = new provproto.DiffRequest();
    req.setUrn(urn);
    req.setId(id);
    req.setOlds(toStruct(olds));
    req.setNews(toStruct(news));
    const res = await call(this.c, this.c.diff, req, this.timeoutMs);
    const c = res.getChanges();
    return {
      changes:
        c === provproto.DiffResponse.DiffChanges.DIFF_SOME
          ? "some"
          : c === provproto.DiffResponse.DiffChanges.DIFF_NONE
            ? "none"
            : "unknown",
      replaces: res.getReplacesList(),
      deleteBeforeReplace: res.getDeletebeforereplace(),
    };
  }

  async create(
    urn: string,
    properties: Record<string, unknown>,
  ): Promise<{ id: string; properties: Record<string, unknown> }> {
    const req = new provproto.CreateRequest();
    req.setUrn(urn);
    req.setProperties(toStruct(properties));
    const res = await call(this.c, this.c.create, req, this.timeoutMs);
    return {
      id: res.getId(),
      properties: res.getProperties()?.toJavaScript() ?? {},
    };
  }

  async update(
    urn: string,
    id: string,
    olds: Record<string, unknown>,
    news: Record<string, unknown>,
  ): Promise<Record<string, unknown>> {
    const req = new provproto.UpdateRequest();
    req.setUrn(urn);
    req.setId(id);
    req.setOlds(toStruct(olds));
    req.setNews(toStruct(news));
    const res = await call(this.c, this.c.update, req, this.timeoutMs);
    return res.getProperties()?.toJavaScript() ?? {};
  }

  async read(
    urn: string,
    id: string,
    properties: Record<string, unknown>,
  ): Promise<{ id: string; properties: Record<string, unknown>; inputs: Record<string, unknown> }> {
    const req = new provproto.ReadRequest();
    req.setUrn(urn);
    req.setId(id);
    req.setProperties(toStruct(properties));
    const res = await call(this.c, this.c.read, req, this.timeoutMs);
    return {
      id: res.getId(),
      properties: res.getProperties()?.toJavaScript() ?? {},
      inputs: res.getInputs()?.toJavaScript() ?? {},
    };
  }

  async delete(urn: string, id: string, properties: Record<string, unknown>): Promise<void> {
    const req = new provproto.DeleteRequest();
    req.setUrn(urn);
    req.setId(id);
    req.setProperties(toStruct(properties));
    await call(this.c, this.c.delete, req, this.timeoutMs);
  }

  async cancel(timeoutMs = 10_000): Promise<void> {
    await call(this.c, this.c.cancel, new Empty(), timeoutMs);
  }

  /** Construct a component, as the engine does for a multi-language component of this package. */
  async construct(o: {
    engine: EngineSide;
    type: string;
    name: string;
    inputs: Record<string, unknown>;
    inputDependencies?: Record<string, string[]>;
    providers?: Record<string, string>;
    dependencies?: string[];
    dryRun?: boolean;
  }): Promise<{ urn: string; state: Record<string, unknown>; stateDependencies: Record<string, string[]> }> {
    const req = new provproto.ConstructRequest();
    req.setProject(o.engine.project);
    req.setStack(o.engine.stack);
    req.setDryrun(o.dryRun ?? false);
    req.setParallel(16);
    req.setMonitorendpoint(o.engine.address);
    req.setType(o.type);
    req.setName(o.name);
    req.setParent("");
    req.setInputs(toStruct(o.inputs));
    for (const [k, urns] of Object.entries(o.inputDependencies ?? {})) {
      const deps = new provproto.ConstructRequest.PropertyDependencies();
      deps.setUrnsList(urns);
      req.getInputdependenciesMap().set(k, deps);
    }
    for (const [pkg, ref] of Object.entries(o.providers ?? {})) req.getProvidersMap().set(pkg, ref);
    req.setDependenciesList(o.dependencies ?? []);
    const res = await call(this.c, this.c.construct, req, this.timeoutMs);
    const stateDependencies: Record<string, string[]> = {};
    for (const [k, v] of res.getStatedependenciesMap().entries()) stateDependencies[k] = v.getUrnsList();
    return {
      urn: res.getUrn(),
      state: res.getState()?.toJavaScript() ?? {},
      stateDependencies,
    };
  }
}
