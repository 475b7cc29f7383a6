//! Seed inputs, so fuzzing starts from what the parsers really see: the policy vectors
//! (`policy-core/tests/vectors`: documents, requests, app domains), the example configuration,
//! the path spellings of the path-confusion review, Entra token claim sets shaped like the
//! token tests' and Microsoft's documented ones, application tokens as the gateway mints them,
//! and the files committed under `fuzz/seeds/<target>/` (Entra's verbatim SCIM payloads from
//! the scim tests, filters and paths).
//!
//! `cargo run --example seeds -- DIR` writes them to `DIR/<target>/` (`cargo xtask fuzz` does,
//! into `fuzz/corpus/`), and `cargo test` runs every one through its target.

use std::path::Path;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use edge_access_token::AppClaims;
use serde_json::{json, Value};

use crate::token::{issuer_v1, issuer_v2, CLIENT, NONCE, NOW, TENANT};

/// One seed input.
#[derive(Debug, Clone)]
pub struct Seed {
    /// The target it is for.
    pub target: &'static str,
    /// Its file name.
    pub name: String,
    /// The input.
    pub data: Vec<u8>,
}

impl Seed {
    fn new(target: &'static str, name: impl Into<String>, data: impl Into<Vec<u8>>) -> Self {
        Self {
            target,
            name: name.into(),
            data: data.into(),
        }
    }
}

/// Paths an origin reads differently from a naive prefix match: the spellings of the
/// path-confusion review and their mirror cases.
const PATH_SPELLINGS: &[&str] = &[
    "/admin/..%2Fusers",
    "/admin/..;/users",
    "/admin/%2e%2e%2fusers",
    "/admin/..%5Cusers",
    "/admin/..%2Fpublic/x",
    "/public/../admin/x",
    "//admin/x",
    "/ADMIN/x",
    "/%61dmin/x",
    "/admin./x",
    "/admin%20/x",
    "/admin;jsessionid=1/x",
    "/admin%2fx",
    "/admin/x?y=1#z",
    "/admin\\x",
    "/admin/status/../../public",
    "/%2e/admin",
    "/admin/%252e%252e/x",
];

const HOSTS: &[&str] = &[
    "app.example.com",
    "APP.Example.com.:8443",
    "https://app.example.com",
    "x.example.com",
    "a.b.example.com",
    "x.test.example.com",
    "example.com",
    "[2001:db8::1]:443",
];

/// Every generated seed (the committed ones are read by [`committed`]).
///
/// # Errors
/// When the policy vectors or the example configuration cannot be read.
pub fn generated(root: &Path) -> Result<Vec<Seed>, String> {
    let mut seeds = Vec::new();
    policy_seeds(root, &mut seeds)?;
    target_seeds(&mut seeds);
    entra_token_seeds(&mut seeds);
    app_token_seeds(&mut seeds)?;
    jwks_seeds(&mut seeds);
    Ok(seeds)
}

/// The files under `fuzz/seeds/<target>/`.
///
/// # Errors
/// When one cannot be read.
pub fn committed(fuzz_dir: &Path) -> Result<Vec<Seed>, String> {
    let mut seeds = Vec::new();
    for (target, _) in crate::TARGETS {
        for file in crate::files_in(&fuzz_dir.join("seeds").join(target)) {
            let data =
                std::fs::read(&file).map_err(|e| format!("cannot read {}: {e}", file.display()))?;
            let name = file
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            seeds.push(Seed::new(target, name, data));
        }
    }
    Ok(seeds)
}

/// Writes every seed to `out/<target>/seed-<name>`.
///
/// # Errors
/// When a seed cannot be read or written.
pub fn write(out: &Path) -> Result<usize, String> {
    let mut seeds = generated(&crate::repository_root())?;
    seeds.extend(committed(&crate::fuzz_dir())?);
    for seed in &seeds {
        let dir = out.join(seed.target);
        std::fs::create_dir_all(&dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let file = dir.join(format!("seed-{}", seed.name));
        std::fs::write(&file, &seed.data)
            .map_err(|e| format!("cannot write {}: {e}", file.display()))?;
    }
    Ok(seeds.len())
}

fn read(path: &Path) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
}

/// Documents, document + request pairs, requests and app domains from the policy vectors and
/// the examples.
fn policy_seeds(root: &Path, seeds: &mut Vec<Seed>) -> Result<(), String> {
    let examples = root.join("examples");
    let example_request = read(&examples.join("request.json"))?;
    for name in ["config.json", "dev-config.json"] {
        let document = read(&examples.join(name))?;
        let stem = name.trim_end_matches(".json");
        seeds.push(Seed::new(
            "policy_document",
            format!("example-{stem}"),
            document.clone(),
        ));
        seeds.push(Seed::new(
            "policy_document",
            format!("example-{stem}-request"),
            format!("{document}\0{example_request}"),
        ));
    }
    seeds.push(Seed::new("request", "example", example_request));

    let vectors = root.join("policy-core").join("tests").join("vectors");
    let files = crate::files_in(&vectors);
    if files.is_empty() {
        return Err(format!("no policy vectors in {}", vectors.display()));
    }
    for file in files {
        let stem = file
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let vector: Value =
            serde_json::from_str(&read(&file)?).map_err(|e| format!("{}: {e}", file.display()))?;
        let document = vector["document"].to_string();
        seeds.push(Seed::new(
            "policy_document",
            format!("vector-{stem}"),
            document.clone(),
        ));
        for app in vector["document"]["apps"].as_array().into_iter().flatten() {
            if let Some(domain) = app["domain"].as_str() {
                let index = seeds.len();
                seeds.push(Seed::new(
                    "target",
                    format!("vector-{stem}-domain-{index}"),
                    domain,
                ));
            }
        }
        for (i, case) in vector["cases"].as_array().into_iter().flatten().enumerate() {
            let request = case["request"].to_string();
            seeds.push(Seed::new(
                "policy_document",
                format!("vector-{stem}-{i}"),
                format!("{document}\0{request}"),
            ));
            seeds.push(Seed::new("request", format!("vector-{stem}-{i}"), request));
            if let Some(app) = case["request"]["app"].as_str() {
                seeds.push(Seed::new("target", format!("vector-{stem}-{i}"), app));
            }
        }
    }
    Ok(())
}

fn target_seeds(seeds: &mut Vec<Seed>) {
    for (h, host) in HOSTS.iter().enumerate() {
        seeds.push(Seed::new("target", format!("host-{h}"), *host));
        for (p, path) in PATH_SPELLINGS.iter().enumerate() {
            seeds.push(Seed::new(
                "target",
                format!("host-{h}-path-{p}"),
                format!("{host}{path}"),
            ));
        }
    }
    for (p, path) in PATH_SPELLINGS.iter().enumerate() {
        let request = json!({ "app": format!("app.example.com{path}"),
                              "identity": { "email": "ada@example.com", "amr": ["pwd", "mfa"],
                                            "groups": ["5b3e8c1a-0d6f-4a39-9c55-2f7b1e0a9d41"] } });
        seeds.push(Seed::new(
            "request",
            format!("path-{p}"),
            request.to_string(),
        ));
    }
}

fn b64(value: &Value) -> String {
    URL_SAFE_NO_PAD.encode(value.to_string())
}

fn jws(header: &Value, claims: &Value) -> String {
    format!(
        "{}.{}.{}",
        b64(header),
        b64(claims),
        URL_SAFE_NO_PAD.encode([0x5a_u8; 256])
    )
}

/// Entra v1 and v2 access and ID tokens for the example configuration's tenant and client.
fn entra_token_seeds(seeds: &mut Vec<Seed>) {
    let header = json!({ "typ": "JWT", "alg": "RS256", "kid": "key-1", "x5t": "key-1" });
    let iat = NOW - 10;
    let v1_access = json!({
        "aud": format!("api://{CLIENT}"), "iss": issuer_v1(), "iat": iat, "nbf": iat, "exp": NOW + 3600,
        "acr": "1", "aio": "AVQAq/8TAAAA", "amr": ["pwd", "mfa"], "appid": CLIENT, "appidacr": "0",
        "family_name": "Lovelace", "given_name": "Ada", "ipaddr": "203.0.113.7", "name": "Ada Lovelace",
        "oid": "e2a1c3b4-5d6f-4789-8a9b-0c1d2e3f4a5b", "rh": "0.AAAA", "scp": "user_impersonation",
        "sub": "l3_roISQU222bULS9yi2k0XpqpOiMz5H3ZACo1GeXA", "tid": TENANT,
        "unique_name": "ada@example.com", "upn": "ada@example.com", "uti": "fqiBqXLPj0eQa82S-IYFAA",
        "ver": "1.0", "groups": ["1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d"]
    });
    let v2_id = json!({
        "aud": CLIENT, "iss": issuer_v2(), "iat": iat, "nbf": iat, "exp": NOW + 3600,
        "email": "ada@example.com", "name": "Ada Lovelace", "nonce": NONCE,
        "oid": "e2a1c3b4-5d6f-4789-8a9b-0c1d2e3f4a5b", "preferred_username": "ada@example.com",
        "rh": "0.AAAA", "sub": "AAAAAAAAAAAAAAAAAAAAAIkzqFVrSaSaFHy782bbtaQ", "tid": TENANT,
        "uti": "AbCdEf", "ver": "2.0", "acrs": ["c1"], "amr": ["pwd"],
        "groups": ["5B3E8C1A-0D6F-4A39-9C55-2F7B1E0A9D41", "0d9e8f7a-6b5c-4d3e-2f1a-0b9c8d7e6f5a"]
    });
    let mut overage = v2_id.clone();
    overage["groups"] = Value::Null;
    overage["_claim_names"] = json!({ "groups": "src1" });
    overage["_claim_sources"] = json!({ "src1": { "endpoint": "https://graph.microsoft.com/v1.0/users/x/getMemberObjects" } });
    let mut hasgroups = v1_access.clone();
    hasgroups["hasgroups"] = json!(true);
    let mut app_only = v2_id.clone();
    app_only["idtyp"] = json!("app");
    app_only["roles"] = json!(["GroupMember.Read.All"]);
    let mut array_aud = v2_id.clone();
    array_aud["aud"] = json!(["other", CLIENT]);
    let mut expired = v1_access.clone();
    expired["exp"] = json!(NOW - 61);
    let tokens = [
        ("v1-access", jws(&header, &v1_access)),
        ("v2-id", jws(&header, &v2_id)),
        ("v2-overage", jws(&header, &overage)),
        ("v1-hasgroups", jws(&header, &hasgroups)),
        ("v2-app-only", jws(&header, &app_only)),
        ("v2-array-aud", jws(&header, &array_aud)),
        ("v1-expired", jws(&header, &expired)),
        (
            "alg-none",
            jws(&json!({ "alg": "none", "kid": "key-1" }), &v2_id),
        ),
        (
            "alg-hs256",
            jws(&json!({ "alg": "HS256", "kid": "key-1" }), &v2_id),
        ),
        (
            "crit",
            jws(
                &json!({ "alg": "RS256", "kid": "key-1", "crit": ["exp"] }),
                &v2_id,
            ),
        ),
    ];
    for (name, token) in tokens {
        seeds.push(Seed::new("entra_token", name, token));
    }
}

/// Application tokens as the gateway signs them.
fn app_token_seeds(seeds: &mut Vec<Seed>) -> Result<(), String> {
    let now = i64::try_from(NOW).unwrap_or(i64::MAX);
    let claims = AppClaims {
        aud: vec!["3a7f7d1c9e2b4c5d8f6a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e".into()],
        email: Some("ada@example.com".into()),
        sub: "e2a1c3b4-5d6f-4789-8a9b-0c1d2e3f4a5b".into(),
        iss: "https://access.example.com".into(),
        token_type: "app".into(),
        identity_nonce: "6ba4f3c0-1d2e-4f5a-8b9c-0d1e2f3a4b5c".into(),
        country: Some("PT".into()),
        common_name: None,
        iat: now,
        nbf: now,
        exp: now + 86_400,
    };
    let mut service = claims.clone();
    service.email = None;
    service.country = None;
    service.common_name = Some("ci.access".into());
    service
        .aud
        .push("9c0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d".into());
    let kid = "5f2ad8c3b1e04a7d9c6b8e1f0a3d5c7b9e2f4a6c8d0b1e3f5a7c9d2b4e6f8a0c";
    for (name, claims) in [("user", &claims), ("two-apps", &service)] {
        let input = claims.signing_input(kid).map_err(|e| e.to_string())?;
        seeds.push(Seed::new(
            "app_token",
            name,
            AppClaims::assemble(&input, &[0x5a; 256]),
        ));
    }
    Ok(())
}

/// Key sets shaped like Entra's (`/discovery/v2.0/keys`).
fn jwks_seeds(seeds: &mut Vec<Seed>) {
    let n = URL_SAFE_NO_PAD.encode([0xc5_u8; 256]);
    let entra = json!({ "keys": [
        { "kty": "RSA", "use": "sig", "kid": "key-1", "x5t": "key-1", "n": n, "e": "AQAB",
          "x5c": ["MIIC/jCCAeagAwIBAgIJA"], "issuer": issuer_v2() },
        { "kty": "RSA", "kid": "key-2", "n": n, "e": "AQAB" },
        { "kty": "RSA", "use": "enc", "kid": "key-3", "n": n, "e": "AQAB" },
        { "kty": "EC", "use": "sig", "kid": "key-4", "crv": "P-256", "x": "AA", "y": "AA" }
    ]});
    seeds.push(Seed::new("jwks", "entra", entra.to_string()));
    seeds.push(Seed::new("jwks", "empty", "{\"keys\":[]}"));
}
