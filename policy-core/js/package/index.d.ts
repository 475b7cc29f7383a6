// Types of @edge-access/policy-core: the same API from every entry point (Node, browsers and
// bundlers, Cloudflare Workers). The configuration document is described field by field in
// schema/edge-access.schema.json (JSON Schema, for editors) and in policy-core's README.

// ---------------------------------------------------------------------------------------------
// Loading the Wasm module

/** What `init` accepts: where the Wasm module is, or the module itself. */
export type InitInput =
  | string
  | URL
  | Request
  | Response
  | BufferSource
  | WebAssembly.Module;

/**
 * Loads the Wasm module. In browsers and bundlers call it once before anything else (the module
 * is fetched from `input`, else from `wasm/policy_core_bg.wasm` beside the package's glue);
 * in Node and Workers the module is loaded on import and this resolves at once.
 */
export function init(input?: InitInput | Promise<InitInput>): Promise<void>;

/** Loads the Wasm module synchronously from its bytes or a compiled module (browsers). */
export function initSync(module?: BufferSource | WebAssembly.Module): void;

// ---------------------------------------------------------------------------------------------
// The engine

/** A compiled configuration document: compile once, decide many requests. */
export class PolicyEngine {
  /**
   * Compiles `document` (an object or its JSON text).
   * @throws {TypeError} when `document` is neither, or holds a value JSON cannot carry
   *   (a function, `undefined` in an array, a `Date`, a cycle, …); `error.path` names it.
   * @throws {PolicyError} listing every problem (`source: "document"`) when it does not load.
   */
  constructor(document: ConfigurationDocument | string);

  /**
   * Decides `request` (an object or its JSON text) and explains the decision.
   * @throws {TypeError} as the constructor does, for the request.
   * @throws {PolicyError} when the request does not load (`source: "request"`) or a work
   *   limit stopped the evaluation (`source: "evaluation"`): refuse the request.
   */
  evaluate(request: PolicyRequest | string): Verdict;

  /** `evaluate`, with the verdict as JSON text. */
  evaluateJson(request: PolicyRequest | string): string;

  /** The outcome alone, without building a trace: the fast path. Throws as `evaluate`. */
  decide(request: PolicyRequest | string | PreparedRequest): Outcome;

  /** Parses `request` once, to decide it many times (or against several engines). */
  prepare(request: PolicyRequest | string): PreparedRequest;

  /** Risky but valid parts of the document (an `allow` policy that includes `everyone`, …). */
  warnings(): Warning[];

  /**
   * Releases the engine's Wasm memory now (it is also released when garbage-collected). Where
   * `Symbol.dispose` exists, `using engine = new PolicyEngine(…)` calls it.
   */
  free(): void;
}

/** A request parsed once by `PolicyEngine.prepare`. */
export class PreparedRequest {
  private constructor();
  /** Releases the request's Wasm memory now. */
  free(): void;
}

/** A document or request that does not load, or an evaluation stopped by a work limit. */
export class PolicyError extends Error {
  readonly name: 'PolicyError';
  /** What failed: the document, the request, or the evaluation (a work limit). */
  readonly source: 'document' | 'request' | 'evaluation';
  /** Every problem with its JSON path (none for `evaluation`). */
  readonly problems: Problem[];
}

/** One problem: where (`apps[2].policies[0].include[1]`, `""` for the root) and what. */
export interface Problem {
  path: string;
  message: string;
}

/** A risky but valid part of the document. */
export interface Warning {
  path: string;
  message: string;
}

// ---------------------------------------------------------------------------------------------
// The verdict

/**
 * What happens to the request: `allow`, `bypass` and `service_auth` go through; `block` (a deny
 * policy matched), `default_deny` (nothing matched), `login_required` (no identity, and
 * signing in could change the answer), `no_app` (no app covers the request) and `invalid_path`
 * (a path origins read differently) do not.
 */
export type Outcome =
  | 'allow'
  | 'bypass'
  | 'service_auth'
  | 'block'
  | 'default_deny'
  | 'login_required'
  | 'no_app'
  | 'invalid_path';

export interface Verdict {
  outcome: Outcome;
  /** The id of the app that covers the request. */
  app: string | null;
  /** The deciding policy (for `login_required`: the one that could match after sign-in). */
  policy: { id: string | null; name: string; precedence: number } | null;
  /** For `allow`: the session length (the policy's, else the app's, else `24h`). */
  session_duration: string | null;
  /** The decision, step by step, for people. */
  trace: string[];
}

// ---------------------------------------------------------------------------------------------
// The request

export interface PolicyRequest {
  /** `host[:port]/path[?query]`; the path is never normalised. */
  app: string;
  /** The signed-in user; absent when no one is signed in. */
  identity?: Identity | null;
  /** The verified service token the request carries. */
  service_token?: { token_id: string } | null;
  /** The client address (IPv4 or IPv6). */
  ip?: string | null;
  /** The client's country, ISO 3166 alpha-2. */
  country?: string | null;
  /** The verified mTLS client certificate. */
  mtls?: { common_name?: string | null } | null;
}

export interface Identity {
  email?: string | null;
  /** Entra object id (`oid`). */
  user_id?: string | null;
  /** Entra tenant id (`tid`). */
  tenant_id?: string | null;
  /** The identity provider signed in with (when absent and there is exactly one, that one). */
  idp_id?: string | null;
  /** Entra group object ids (GUIDs). */
  groups?: string[] | null;
  /** Authentication methods (`amr`). */
  amr?: string[] | null;
  /** Authentication contexts (`acrs`). */
  acrs?: string[] | null;
  /** Other claims, for `oidc` rules. */
  claims?: Record<string, ClaimValue> | null;
}

export type ClaimValue = string | number | boolean | null | ClaimValue[];

// ---------------------------------------------------------------------------------------------
// The configuration document (Cloudflare Access API shapes). Unknown fields are load errors;
// `null` is read as absent. Read-only API metadata (`created_at`, `updated_at`, `uid`, …) is
// accepted and ignored.

export interface ConfigurationDocument {
  /** The JSON Schema of the document, for editors; ignored. */
  $schema?: string;
  /** The issuer of application tokens: `https://host`. */
  team_domain: string;
  identity_providers?: IdentityProvider[] | null;
  service_tokens?: ServiceToken[] | null;
  lists?: List[] | null;
  groups?: AccessGroup[] | null;
  policies?: ReusablePolicy[] | null;
  apps?: App[] | null;
  directory?: Directory | null;
}

/** Read-only Access API metadata: accepted and ignored. */
export interface ApiMetadata {
  created_at?: unknown;
  updated_at?: unknown;
  uid?: unknown;
  reusable?: unknown;
  app_count?: unknown;
  version?: unknown;
}

export interface IdentityProvider {
  id: string;
  name: string;
  type: 'azureAD';
  config: IdentityProviderConfig;
  scim_config?: ScimConfig | null;
  uid?: unknown;
  version?: unknown;
  scim_base_url?: unknown;
  created_at?: unknown;
  updated_at?: unknown;
}

export interface IdentityProviderConfig {
  /** The app registration's Application (client) ID. */
  client_id: string;
  /** The Directory (tenant) ID, a GUID. */
  directory_id: string;
  /** Not allowed: set the `AZURE_CLIENT_SECRET` secret instead. */
  client_secret?: null;
  support_groups?: boolean | null;
  pkce_enabled?: boolean | null;
  prompt?: 'login' | 'select_account' | 'none' | 'consent' | null;
  email_claim_name?: string | null;
  conditional_access_enabled?: boolean | null;
  azure_cloud?: 'default' | 'us' | 'de' | 'cn' | null;
  claims?: string[] | null;
  /** Accepted and ignored. */
  redirect_url?: unknown;
}

export interface ScimConfig {
  enabled?: boolean | null;
  user_deprovision?: boolean | null;
  seat_deprovision?: boolean | null;
  group_member_deprovision?: boolean | null;
  identity_update_behavior?: 'automatic' | 'reauth' | 'no_action' | null;
  secret?: unknown;
  updated_at?: unknown;
}

export interface ServiceToken {
  id: string;
  name: string;
  /** What clients send in `CF-Access-Client-Id`. */
  client_id: string;
  /** The SHA-256 of the client secret, 64 hex digits; never the secret. */
  client_secret_sha256: string;
  created_at?: unknown;
  updated_at?: unknown;
  expires_at?: unknown;
  duration?: unknown;
}

export interface List extends ApiMetadata {
  id: string;
  name: string;
  type: 'EMAIL' | 'IP';
  items: { value: string; description?: unknown; created_at?: unknown }[];
  description?: unknown;
}

export interface AccessGroup extends ApiMetadata {
  id: string;
  name: string;
  include: Rule[];
  require?: Rule[] | null;
  exclude?: Rule[] | null;
  is_default?: unknown;
}

export type Decision = 'allow' | 'deny' | 'bypass' | 'non_identity';

interface PolicyFields extends ApiMetadata {
  name: string;
  decision: Decision;
  /** At least one must match. */
  include: Rule[];
  /** All must match. */
  require?: Rule[] | null;
  /** None may match. */
  exclude?: Rule[] | null;
  /** A Go duration from 0 to 744h (`8h`, `2h45m`). */
  session_duration?: string | null;
  /** Restrictions edge-access cannot enforce: only `false` loads. */
  approval_required?: false | null;
  approval_groups?: unknown;
  purpose_justification_required?: false | null;
  purpose_justification_prompt?: unknown;
  isolation_required?: false | null;
  /** Only `{ mfa_disabled: true }` loads (use an `auth_method` rule for MFA). */
  mfa_config?: { mfa_disabled: true; [other: string]: unknown } | null;
}

export interface ReusablePolicy extends PolicyFields {
  id: string;
}

export interface InlinePolicy extends PolicyFields {
  id?: string | null;
  /** Unique within the app; give it for every policy of the app or for none. */
  precedence?: number | null;
}

export interface PolicyLink extends ApiMetadata {
  /** A reusable policy's `id`. */
  id: string;
  precedence?: number | null;
}

/** A reusable policy's id, a link to one, or an inline policy. */
export type AppPolicy = string | PolicyLink | InlinePolicy;

export interface App {
  id: string;
  name: string;
  /** `host` or `host/path`, with Access's wildcards (`*.example.com`, `/alpha/*`). */
  domain: string;
  aud: string;
  type?: 'self_hosted' | null;
  session_duration?: string | null;
  policies: AppPolicy[];
  allowed_idps?: string[] | null;
  custom_deny_url?: string | null;
  custom_non_identity_deny_url?: string | null;
  custom_deny_message?: string | null;
  /** An edge-access setting: allow `%2F` in this app's paths. */
  allow_encoded_slashes?: boolean | null;
  created_at?: unknown;
  updated_at?: unknown;
  uid?: unknown;
  app_launcher_visible?: unknown;
  logo_url?: unknown;
  tags?: unknown;
  skip_interstitial?: unknown;
  auto_redirect_to_identity?: unknown;
}

export interface Directory {
  /** Child group object id → parent group object ids. */
  group_parents?: Record<string, string[]> | null;
  /** Group object id → display name (for traces). */
  group_names?: Record<string, string> | null;
}

type Empty = Record<string, never>;

/** The selectors and their bodies, as in the Access API. */
export interface Selectors {
  /** Always (for `allow`/`deny`: after sign-in). */
  everyone: Empty;
  /** The identity's email equals (ASCII case-insensitive). */
  email: { email: string };
  /** The part after the last `@` equals (case-insensitive; no subdomains). */
  email_domain: { domain: string };
  /** The email is in the `EMAIL` list. */
  email_list: { id: string };
  /** The client IP is in the CIDR (IPv4/IPv6). */
  ip: { ip: string };
  /** The client IP is in a range of the `IP` list. */
  ip_list: { id: string };
  /** The client's country (ISO 3166 alpha-2). */
  geo: { country_code: string };
  /** The Entra group (object id) is among the user's groups or their ancestors. */
  azureAD: { id: string; identity_provider_id: string };
  /** The Access group matches. */
  group: { id: string };
  /** The user signed in with that identity provider. */
  login_method: { id: string };
  /** `amr` contains the method. */
  auth_method: { auth_method: string };
  /** `acrs` contains the Entra authentication context. */
  auth_context: { id: string; ac_id: string; identity_provider_id: string };
  /** The claim equals the value (or an array claim contains it). */
  oidc: { claim_name: string; claim_value: string; identity_provider_id: string };
  /** The request carries that verified service token (`non_identity` policies). */
  service_token: { token_id: string };
  /** The request carries any verified service token (`non_identity` policies). */
  any_valid_service_token: Empty;
  /** The mTLS client certificate's common name equals. */
  common_name: { common_name: string };
  /** A valid mTLS client certificate was presented. */
  certificate: Empty;
}

/** A rule: an object with exactly one selector key. */
export type Rule = {
  [K in keyof Selectors]: { [P in K]: Selectors[P] } & {
    [P in Exclude<keyof Selectors, K>]?: never;
  };
}[keyof Selectors];
