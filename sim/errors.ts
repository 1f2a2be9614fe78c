// metav1.Status errors with the reasons, codes and message shapes of apimachinery's errors.go
// (kubernetes-api-facts.md §2).
import { qualifiedKind, qualifiedResource, ResourceInfo } from "./resources";

export interface StatusCause {
  reason: string;
  message: string;
  field?: string;
}

export interface StatusDetails {
  name?: string;
  group?: string;
  kind?: string;
  uid?: string;
  causes?: StatusCause[];
  retryAfterSeconds?: number;
}

export interface StatusObject {
  kind: "Status";
  apiVersion: "v1";
  metadata: Record<string, unknown>;
  status: "Failure" | "Success";
  message?: string;
  reason?: string;
  details?: StatusDetails;
  code: number;
}

/** An API error: thrown by the store and turned into a Status response by the server. */
export class ApiError extends Error {
  constructor(readonly status: StatusObject) {
    super(status.message);
    this.name = "ApiError";
  }
  get code(): number {
    return this.status.code;
  }
  get reason(): string | undefined {
    return this.status.reason;
  }
}

function failure(code: number, reason: string, message: string, details?: StatusDetails): ApiError {
  const status: StatusObject = {
    kind: "Status",
    apiVersion: "v1",
    metadata: {},
    status: "Failure",
    message,
    reason,
    code,
  };
  if (details) status.details = details;
  return new ApiError(status);
}

export const notFound = (info: ResourceInfo, name: string): ApiError =>
  failure(404, "NotFound", `${qualifiedResource(info)} "${name}" not found`, {
    name,
    group: info.group || undefined,
    kind: info.name,
  });

export const alreadyExists = (info: ResourceInfo, name: string): ApiError =>
  failure(409, "AlreadyExists", `${qualifiedResource(info)} "${name}" already exists`, {
    name,
    group: info.group || undefined,
    kind: info.name,
  });

export const conflict = (
  info: ResourceInfo,
  name: string,
  why = "the object has been modified; please apply your changes to the latest version and try again",
): ApiError =>
  failure(409, "Conflict", `Operation cannot be fulfilled on ${qualifiedResource(info)} "${name}": ${why}`, {
    name,
    group: info.group || undefined,
    kind: info.name,
  });

/** One field error in apimachinery's format: `<field>: Invalid value: "<v>": <detail>`. */
export interface FieldError {
  field: string;
  reason:
    | "FieldValueInvalid"
    | "FieldValueRequired"
    | "FieldValueNotSupported"
    | "FieldValueForbidden"
    | "FieldValueTooLong"
    | "FieldValueDuplicate";
  /** The text after the field path, e.g. `Invalid value: "Foo": a lowercase RFC 1123 ...`. */
  detail: string;
}

export function invalidValue(field: string, value: unknown, detail: string): FieldError {
  const shown = typeof value === "string" ? `"${value}"` : JSON.stringify(value);
  return { field, reason: "FieldValueInvalid", detail: `Invalid value: ${shown}: ${detail}` };
}

export function requiredValue(field: string, detail = ""): FieldError {
  return {
    field,
    reason: "FieldValueRequired",
    detail: detail ? `Required value: ${detail}` : "Required value",
  };
}

export const invalid = (info: ResourceInfo, name: string, errors: FieldError[]): ApiError => {
  const texts = errors.map((e) => `${e.field}: ${e.detail}`);
  const joined = texts.length === 1 ? texts[0] : `[${texts.join(", ")}]`;
  return failure(422, "Invalid", `${qualifiedKind(info)} "${name}" is invalid: ${joined}`, {
    name,
    group: info.group || undefined,
    kind: info.kind,
    causes: errors.map((e) => ({ reason: e.reason, message: e.detail, field: e.field })),
  });
};

export const badRequest = (message: string): ApiError => failure(400, "BadRequest", message);

export const expired = (message: string): ApiError => failure(410, "Expired", message);

export const tooManyRequests = (retryAfterSeconds: number): ApiError =>
  failure(429, "TooManyRequests", "Too many requests, please try again later.", { retryAfterSeconds });

export const unauthorized = (): ApiError => failure(401, "Unauthorized", "Unauthorized");

export const forbidden = (message: string, info?: ResourceInfo, name?: string): ApiError =>
  failure(
    403,
    "Forbidden",
    message,
    info ? { name, group: info.group || undefined, kind: info.name } : undefined,
  );

export const methodNotAllowed = (message: string): ApiError => failure(405, "MethodNotAllowed", message);

export const unsupportedMediaType = (contentType: string): ApiError =>
  failure(
    415,
    "UnsupportedMediaType",
    `the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, application/strategic-merge-patch+json (got ${contentType})`,
  );

export const internalError = (message: string): ApiError =>
  failure(500, "InternalError", `Internal error occurred: ${message}`, { causes: [{ reason: "", message }] });

export const serviceUnavailable = (): ApiError =>
  failure(503, "ServiceUnavailable", "the server is currently unable to handle the request");

export const timeoutError = (): ApiError =>
  failure(
    504,
    "Timeout",
    "the server was unable to return a response in the time allotted, but may still be processing the request",
  );

export const namespaceNotFound = (namespace: string): ApiError =>
  failure(404, "NotFound", `namespaces "${namespace}" not found`, { name: namespace, kind: "namespaces" });

export const namespaceTerminating = (namespace: string, info: ResourceInfo, name: string): ApiError =>
  failure(
    403,
    "Forbidden",
    `${qualifiedResource(info)} "${name}" is forbidden: unable to create new content in namespace ${namespace} because it is being terminated`,
    {
      name,
      group: info.group || undefined,
      kind: info.name,
      causes: [
        {
          reason: "NamespaceTerminating",
          message: `namespace ${namespace} is being terminated`,
          field: "metadata.namespace",
        },
      ],
    },
  );

export function successStatus(info: ResourceInfo, name: string, uid: string): StatusObject {
  return {
    kind: "Status",
    apiVersion: "v1",
    metadata: {},
    status: "Success",
    details: { name, group: info.group || undefined, kind: info.name, uid },
    code: 200,
  };
}
