//! Generates the benchmark workload: a realistic app (24 policies mixing selectors and Access
//! groups) among 50 apps, a 10,000-group directory nested 5 deep, and a user with 150 groups;
//! plus a 1,000-app / 10,000-policy document for compile time.
//!
//! `cargo run -p policy-core --example workload -- realistic > workload.json` prints
//! `{ "document": …, "request": … }`; `-- realistic-document` and `-- realistic-request` print
//! each alone (for hosts that read them as files); `-- large` prints the large document.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::cast_possible_truncation,
    dead_code,
    reason = "a failure panics, as in a test; workload sizes are small; the benchmark includes this file and leaves `main` unused"
)]

use serde_json::{json, Value};

/// A small deterministic generator (no dependency, same numbers everywhere).
#[derive(Debug)]
pub struct Lcg(u64);

impl Lcg {
    pub fn new(seed: u64) -> Lcg {
        Lcg(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
}

pub fn guid(n: u64) -> String {
    format!(
        "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
        n as u32,
        (n >> 32) & 0xffff,
        n & 0xfff,
        (n >> 12) & 0xfff,
        n.wrapping_mul(0x9e3779b97f4a7c15) & 0xffff_ffff_ffff
    )
}

pub const IDP: &str = "7f1c2d3e-4b5a-4c6d-8e9f-0a1b2c3d4e5f";

/// Level sizes of the 10,000-group directory, top first (5 levels).
pub const LEVELS: [usize; 5] = [10, 90, 900, 3000, 6000];

/// Group numbers per level.
pub fn levels() -> Vec<Vec<u64>> {
    let mut next = 1u64;
    LEVELS
        .iter()
        .map(|&n| {
            let level: Vec<u64> = (next..next + n as u64).collect();
            next += n as u64;
            level
        })
        .collect()
}

/// Child → parents map: every group below the top has one or two parents one level up.
pub fn directory(rng: &mut Lcg) -> Value {
    let levels = levels();
    let mut parents = serde_json::Map::new();
    for k in 1..levels.len() {
        for &child in &levels[k] {
            let up = &levels[k - 1];
            let mut ps = vec![guid(up[rng.below(up.len())])];
            if rng.below(3) == 0 {
                ps.push(guid(up[rng.below(up.len())]));
            }
            parents.insert(guid(child), json!(ps));
        }
    }
    json!({ "group_parents": parents })
}

fn azure(id: u64) -> Value {
    json!({ "azureAD": { "id": guid(id), "identity_provider_id": IDP } })
}

pub fn realistic() -> Value {
    let mut rng = Lcg::new(42);
    let levels = levels();
    let directory = directory(&mut rng);
    let groups = json!([
        { "id": "eng", "name": "Engineering", "include": [azure(levels[0][0]), azure(levels[0][1])],
          "exclude": [{ "email_domain": { "domain": "contractors.example.com" } }] },
        { "id": "sre", "name": "SRE", "include": [azure(levels[1][3]), { "group": { "id": "eng" } }],
          "require": [{ "auth_method": { "auth_method": "mfa" } }] },
        { "id": "finance", "name": "Finance", "include": [azure(levels[1][40]), azure(levels[2][100])] },
        { "id": "offices", "name": "Offices", "include": [{ "ip": { "ip": "203.0.113.0/24" } }, { "ip": { "ip": "2001:db8:100::/48" } }] },
        { "id": "eu", "name": "EU", "include": [{ "geo": { "country_code": "PT" } }, { "geo": { "country_code": "DE" } }, { "geo": { "country_code": "FR" } }] }
    ]);
    let mut policies = vec![
        json!({ "name": "Health", "decision": "bypass", "include": [{ "ip": { "ip": "10.10.0.0/16" } }] }),
        json!({ "name": "CI", "decision": "non_identity", "include": [{ "service_token": { "token_id": "ci-token" } }] }),
        json!({ "name": "Embargo", "decision": "deny", "include": [{ "geo": { "country_code": "KP" } }, { "geo": { "country_code": "IR" } }] }),
        json!({ "name": "Ex-employees", "decision": "deny", "include": [{ "email_list": { "id": "leavers" } }] }),
    ];
    for i in 0..8 {
        policies.push(json!({ "name": format!("Team {i}"), "decision": "allow",
            "include": [azure(levels[2][200 + i * 7]), azure(levels[3][500 + i * 11])],
            "require": [{ "group": { "id": "eu" } }, { "geo": { "country_code": "US" } }] }));
    }
    policies.push(json!({ "name": "Finance", "decision": "allow", "include": [{ "group": { "id": "finance" } }], "require": [{ "group": { "id": "offices" } }] }));
    policies.push(json!({ "name": "Admins", "decision": "allow", "include": [{ "email": { "email": "root@example.com" } }, { "email": { "email": "ops@example.com" } }] }));
    policies.push(json!({ "name": "Partners", "decision": "allow", "include": [{ "email_domain": { "domain": "partner.example.net" } }], "require": [{ "auth_method": { "auth_method": "mfa" } }] }));
    policies.push(json!({ "name": "Contractors", "decision": "deny", "include": [{ "email_domain": { "domain": "contractors.example.com" } }] }));
    for i in 0..4 {
        policies.push(json!({ "name": format!("Division {i}"), "decision": "allow",
            "include": [azure(levels[1][10 + i])], "exclude": [{ "group": { "id": "finance" } }],
            "require": [{ "auth_method": { "auth_method": "mfa" } }, { "geo": { "country_code": "US" } }] }));
    }
    policies.push(json!({ "name": "SRE", "decision": "allow", "include": [{ "group": { "id": "sre" } }], "session_duration": "8h" }));
    policies.push(json!({ "name": "Engineering", "decision": "allow", "include": [{ "group": { "id": "eng" } }], "require": [{ "group": { "id": "eu" } }], "session_duration": "12h" }));
    policies.push(json!({ "name": "Auditors", "decision": "allow", "include": [{ "oidc": { "claim_name": "roles", "claim_value": "Auditor", "identity_provider_id": IDP } }] }));
    for (i, p) in policies.iter_mut().enumerate() {
        p["precedence"] = json!(i + 1);
    }
    let mut apps = vec![
        json!({ "id": "portal", "name": "Portal", "domain": "portal.example.com", "aud": "aud-portal",
                                "session_duration": "24h", "policies": policies }),
    ];
    for i in 0..49 {
        apps.push(json!({ "id": format!("app-{i}"), "name": format!("App {i}"), "domain": format!("app{i}.example.com/x"), "aud": format!("aud-{i}"),
            "policies": [{ "name": "Staff", "decision": "allow", "include": [{ "email_domain": { "domain": "example.com" } }] }] }));
    }
    let document = json!({
        "team_domain": "https://access.example.com",
        "identity_providers": [{ "id": IDP, "name": "Entra", "type": "azureAD",
            "config": { "client_id": "c", "directory_id": "72f988bf-86f1-41af-91ab-2d7cd011db47", "support_groups": true } }],
        "lists": [{ "id": "leavers", "name": "Leavers", "type": "EMAIL",
            "items": (0..200).map(|i| json!({ "value": format!("leaver{i}@example.com") })).collect::<Vec<_>>() }],
        "groups": groups,
        "policies": [],
        "apps": apps,
        "directory": directory,
    });
    // 150 groups from the two lowest levels; one of them nests up to Engineering.
    let mut user_groups: Vec<String> = (0..149)
        .map(|_| guid(levels[4][rng.below(levels[4].len())]))
        .collect();
    user_groups.push(guid(eng_descendant(&document, &levels)));
    let request = json!({
        "app": "portal.example.com/dashboard",
        "identity": { "email": "ada@example.com", "idp_id": IDP, "groups": user_groups, "amr": ["pwd", "mfa"] },
        "ip": "198.51.100.7", "country": "PT",
    });
    json!({ "document": document, "request": request })
}

/// A bottom-level group whose ancestors include the first top-level group (Engineering).
fn eng_descendant(document: &Value, levels: &[Vec<u64>]) -> u64 {
    let parents = &document["directory"]["group_parents"];
    let target = guid(levels[0][0]);
    for &g in &levels[4] {
        let mut frontier = vec![guid(g)];
        for _ in 0..4 {
            frontier = frontier
                .iter()
                .flat_map(|c| parents[c].as_array().cloned().unwrap_or_default())
                .map(|v| v.as_str().unwrap().to_string())
                .collect();
        }
        if frontier.contains(&target) {
            return g;
        }
    }
    panic!("no descendant of the top group")
}

/// 1,000 apps with 10 inline policies each.
pub fn large() -> Value {
    let apps: Vec<Value> = (0..1000)
        .map(|a| {
            let policies: Vec<Value> = (0..10)
                .map(|p| {
                    let rule = match p % 5 {
                        0 => json!({ "email_domain": { "domain": format!("d{a}.example.com") } }),
                        1 => azure(1000 + (a * 10 + p) as u64),
                        2 => json!({ "ip": { "ip": format!("10.{}.{}.0/24", a % 256, p) } }),
                        3 => json!({ "email": { "email": format!("user{p}@a{a}.example.com") } }),
                        _ => json!({ "geo": { "country_code": "PT" } }),
                    };
                    let decision = if p % 5 == 2 { "bypass" } else { "allow" };
                    json!({ "name": format!("p{p}"), "decision": decision, "precedence": p + 1, "include": [rule] })
                })
                .collect();
            json!({ "id": format!("app{a}"), "name": format!("App {a}"), "domain": format!("a{a}.example.com"), "aud": format!("aud{a}"), "policies": policies })
        })
        .collect();
    json!({
        "team_domain": "https://access.example.com",
        "identity_providers": [{ "id": IDP, "name": "Entra", "type": "azureAD",
            "config": { "client_id": "c", "directory_id": "72f988bf-86f1-41af-91ab-2d7cd011db47" } }],
        "apps": apps,
    })
}

fn main() {
    let which = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "realistic".into());
    let value = match which.as_str() {
        "large" => large(),
        "realistic-document" => realistic()["document"].take(),
        "realistic-request" => realistic()["request"].take(),
        _ => realistic(),
    };
    println!("{value}");
}
