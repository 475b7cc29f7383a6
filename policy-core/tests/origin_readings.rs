//! The path property, tested against the other side's reading: for every path the engine
//! accepts, every common origin's way of routing it lands on the app the engine decided with.
//!
//! The origins are modelled here independently of the engine, plainly and on purpose naively:
//! raw prefix (Flask, Envoy), raw prefix case-insensitive (Express's default), decoded with `//`
//! merged and dot segments resolved (nginx), `;parameters` stripped then decoded (Tomcat,
//! Spring), and `\` as `/`, decoded, case-insensitive, trailing dots and spaces dropped (IIS).
#![cfg(not(target_arch = "wasm32"))]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failure panics"
)]

use policy_core::{Engine, Target};
use proptest::prelude::*;

/// App paths on `app.example.com` (the host-wide app is `""`), as the origin routes them.
const APPS: &[(&str, &str)] = &[
    ("site", ""),
    ("admin", "/admin"),
    ("public", "/public"),
    ("docs", "/Docs"),
    ("api", "/api"),
];

fn engine() -> Engine {
    let apps: Vec<String> = APPS
        .iter()
        .map(|(id, path)| {
            let slashes = if *id == "api" { r#", "allow_encoded_slashes": true"# } else { "" };
            format!(
                r#"{{ "id": "{id}", "name": "{id}", "domain": "app.example.com{path}", "aud": "aud-{id}"{slashes},
                     "policies": [{{ "name": "p", "decision": "allow", "include": [{{ "everyone": {{}} }}] }}] }}"#
            )
        })
        .collect();
    Engine::from_json(&format!(
        r#"{{ "team_domain": "https://access.example.com",
             "identity_providers": [{{ "id": "entra", "name": "Entra", "type": "azureAD",
               "config": {{ "client_id": "c", "directory_id": "72f988bf-86f1-41af-91ab-2d7cd011db47" }} }}],
             "apps": [{}] }}"#,
        apps.join(",")
    ))
    .unwrap()
}

/// The longest app path covering `path` by whole segments.
fn prefix_route(path: &[u8], case_insensitive: bool) -> &'static str {
    let fold = |b: &[u8]| -> Vec<u8> {
        if case_insensitive {
            b.to_ascii_lowercase()
        } else {
            b.to_vec()
        }
    };
    let path = fold(path);
    APPS.iter()
        .filter(|(_, prefix)| {
            let prefix = fold(prefix.as_bytes());
            path.starts_with(&prefix) && matches!(path.get(prefix.len()), None | Some(b'/'))
        })
        .max_by_key(|(_, prefix)| prefix.len())
        .map(|(id, _)| *id)
        .unwrap()
}

fn decode(path: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < path.len() {
        if path[i] == b'%' && i + 2 < path.len() {
            if let Ok(v) =
                u8::from_str_radix(std::str::from_utf8(&path[i + 1..i + 3]).unwrap_or("zz"), 16)
            {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(path[i]);
        i += 1;
    }
    out
}

fn resolve(path: &[u8]) -> Vec<u8> {
    let mut kept: Vec<&[u8]> = Vec::new();
    for s in path.split(|&b| b == b'/') {
        match s {
            b"" | b"." => {}
            b".." => {
                kept.pop();
            }
            s => kept.push(s),
        }
    }
    kept.iter().flat_map(|s| [&b"/"[..], s].concat()).collect()
}

fn raw(path: &str) -> Vec<u8> {
    path.trim_end_matches('/').as_bytes().to_vec()
}

fn nginx(path: &str) -> Vec<u8> {
    resolve(&decode(path.as_bytes()))
}

fn tomcat(path: &str) -> Vec<u8> {
    let stripped: Vec<u8> = path
        .split('/')
        .map(|s| s.split(';').next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("/")
        .into_bytes();
    resolve(&decode(&stripped))
}

fn iis(path: &str) -> Vec<u8> {
    let decoded = decode(&path.replace('\\', "/").into_bytes());
    let decoded: Vec<u8> = decoded
        .iter()
        .map(|&b| if b == b'\\' { b'/' } else { b })
        .collect();
    let trimmed: Vec<Vec<u8>> = decoded
        .split(|&b| b == b'/')
        .map(|s| {
            let mut s = s.to_vec();
            while matches!(s.last(), Some(b'.' | b' ')) {
                s.pop();
            }
            s
        })
        .collect();
    resolve(&trimmed.join(&b'/'))
}

/// Every origin's app for `path`.
fn origins(path: &str) -> Vec<(&'static str, &'static str)> {
    vec![
        ("raw prefix (Flask, Envoy)", prefix_route(&raw(path), false)),
        (
            "raw prefix, case-insensitive (Express)",
            prefix_route(&raw(path), true),
        ),
        (
            "decoded, resolved (nginx)",
            prefix_route(&nginx(path), false),
        ),
        ("`;` stripped (Tomcat)", prefix_route(&tomcat(path), false)),
        ("IIS", prefix_route(&iis(path), true)),
    ]
}

fn check(engine: &Engine, path: &str) -> Result<(), TestCaseError> {
    let Ok(target) = Target::parse(&format!("app.example.com{path}")) else {
        return Ok(());
    };
    let Ok(app) = engine.app_for(&target) else {
        return Ok(()); // refused: nothing is forwarded
    };
    let decided = app.map(policy_core::App::id).unwrap_or("none");
    for (origin, routed) in origins(target.path()) {
        prop_assert_eq!(
            routed,
            decided,
            "`{}` was decided by app `{}` but {} routes it to `{}`",
            path,
            decided,
            origin,
            routed
        );
    }
    Ok(())
}

/// Pieces attackers and odd clients put in paths.
const PIECES: &[&str] = &[
    "admin",
    "ADMIN",
    "Admin",
    "public",
    "Public",
    "docs",
    "Docs",
    "DOCS",
    "api",
    "x",
    "a",
    "%61",
    "%41",
    "%2F",
    "%2f",
    "%2e",
    "%2E",
    ".",
    "..",
    "%20",
    " ",
    ";",
    ";x=1",
    "%3B",
    "\\",
    "%5C",
    "%C3%A9",
    "%25",
    "%252e",
    "~",
    "-",
    "%7E",
    "%EF%BD%81",
    "/",
    "//",
    "%00",
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4096))]

    #[test]
    fn every_origin_routes_an_accepted_path_to_the_deciding_app(
        segments in prop::collection::vec(prop::collection::vec(0..PIECES.len(), 1..4), 1..5),
        trailing in any::<bool>(),
    ) {
        let engine = engine();
        let mut path = String::new();
        for segment in &segments {
            path.push('/');
            for &piece in segment {
                path.push_str(PIECES[piece]);
            }
        }
        if trailing {
            path.push('/');
        }
        check(&engine, &path)?;
    }
}

#[test]
fn the_review_spellings_are_refused_or_agree() {
    let engine = engine();
    for path in [
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
        "/api/..%2Fadmin",
        "/docs/x",
        "/Docs/x",
    ] {
        check(&engine, path).unwrap();
    }
    // Plain paths are not refused.
    for (path, app) in [
        ("/admin/x", "admin"),
        ("/Docs/x", "docs"),
        ("/api/a%2Fb", "api"),
    ] {
        let target = Target::parse(&format!("app.example.com{path}")).unwrap();
        assert_eq!(
            engine.app_for(&target).unwrap().map(policy_core::App::id),
            Some(app)
        );
    }
}
