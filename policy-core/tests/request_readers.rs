//! The request's two JSON readers agree: the direct reader (the fast path of
//! `Request::from_json`) either gives up or reads exactly what the tree reader reads, on every
//! vector's requests and on generated requests — well-formed ones, and ones with the shapes
//! each reader must refuse (arrays for objects, repeated and unknown keys, escapes, nulls,
//! numbers, nested claims).
// Native only: proptest is a native dev-dependency (the Wasm run covers the vectors).
#![cfg(not(target_arch = "wasm32"))]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failure panics"
)]

use include_dir::{include_dir, Dir};
use policy_core::suite::TestFile;
use policy_core::Request;
use proptest::prelude::*;

static VECTORS: Dir<'_> = include_dir!("$CARGO_MANIFEST_DIR/tests/vectors");

fn same(text: &str) -> Result<(), TestCaseError> {
    let direct = Request::from_json(text).map_err(|e| e.to_string());
    let tree = Request::from_json_tree(text).map_err(|e| e.to_string());
    prop_assert_eq!(direct, tree, "{}", text);
    Ok(())
}

#[test]
fn every_vector_request_reads_the_same() {
    let mut count = 0;
    for file in VECTORS.files() {
        let Some(text) = file.contents_utf8() else {
            continue;
        };
        let Ok(test) = TestFile::from_json(text) else {
            continue;
        };
        for case in test.cases() {
            same(&case.request).unwrap();
            count += 1;
        }
    }
    assert!(count > 100, "only {count} requests");
}

#[test]
fn refused_shapes_read_the_same() {
    for text in [
        r#"["a.example.com"]"#,
        r#"{"app": "a.example.com", "app": "b.example.com"}"#,
        r#"{"app": "a.example.com", "identity": ["ada@example.com"]}"#,
        r#"{"app": "a.example.com", "identity": {"email": "ada@example.com", "email": "bob@example.com"}}"#,
        r#"{"app": "a.example.com", "identity": {"claims": {"r": ["a"], "r": ["b"]}}}"#,
        r#"{"app": "a.example.com", "identity": {"claims": {"r": [{"x": 1}], "n": 1, "z": null}}}"#,
        r#"{"app": "a.example.com", "identity": {"claims": {"r": [[true, "x"]]}}}"#,
        r#"{"app": "a.example.com", "identity": {"groups": ["0000000-0000-0000-0000-000000000000"]}}"#,
        r#"{"app": "a.example.com", "identity": {"groups": null, "amr": null, "idp_id": "  "}}"#,
        r#"{"app": "a.exa\u006dple.com", "identity": {"email": "ad\u0061@example.com"}}"#,
        r#"{"app": null}"#,
        r#"{"app": "a.example.com", "mtls": {"common_name": 5}}"#,
        r#"{"app": "a.example.com", "mtls": {}, "service_token": {"token_id": ""}}"#,
        r#"{"app": "a.example.com", "service_token": {}}"#,
        r#"{"app": "a.example.com", "ip": "300.1.1.1"}"#,
        r#"{"app": "a.example.com", "country": "PRT"}"#,
        r#"{"app": "a.example.com", "unknown": 1}"#,
        r#"{"app": "a.example.com"} x"#,
        r#"{"app": "a.example.com", "identity": {"claims": {"r": true, "s": "x", "t": [true, "y"]}}}"#,
        r#"{"app": "a.example.com", "identity": {}, "mtls": {"common_name": null}}"#,
    ] {
        same(text).unwrap();
    }
}

/// A JSON value for a request field: mostly right, sometimes another type or `null`.
fn field(
    good: impl Strategy<Value = serde_json::Value> + 'static,
) -> BoxedStrategy<serde_json::Value> {
    prop_oneof![
        6 => good,
        1 => Just(serde_json::Value::Null),
        1 => any::<i64>().prop_map(serde_json::Value::from),
        1 => Just(serde_json::json!(["x"])),
        1 => Just(serde_json::json!({"x": "y"})),
    ]
    .boxed()
}

fn text(pattern: &'static str) -> BoxedStrategy<serde_json::Value> {
    pattern.prop_map(serde_json::Value::from).boxed()
}

fn request() -> impl Strategy<Value = serde_json::Value> {
    let guid = "[0-9a-fA-F]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-fA-F]{12}|[0-9a-f-]{0,37}";
    let identity = (
        field(text("[a-zA-Z.@ ]{0,12}@(example\\.com|x)|[^\"]{0,6}")),
        field(text("[a-z ]{0,4}")),
        field(
            proptest::collection::vec(guid, 0..4)
                .prop_map(serde_json::Value::from)
                .boxed(),
        ),
        field(
            proptest::collection::vec("[a-z]{0,4}", 0..3)
                .prop_map(serde_json::Value::from)
                .boxed(),
        ),
        field(
            proptest::collection::btree_map(
                "[a-z]{1,3}",
                prop_oneof![
                    text("[a-z]{0,3}"),
                    any::<bool>().prop_map(serde_json::Value::from),
                    proptest::collection::vec("[a-z]{0,3}", 0..3).prop_map(serde_json::Value::from),
                ],
                0..3,
            )
            .prop_map(|m| serde_json::Value::Object(m.into_iter().collect()))
            .boxed(),
        ),
    )
        .prop_map(|(email, idp, groups, amr, claims)| {
            serde_json::json!({ "email": email, "idp_id": idp, "groups": groups, "amr": amr,
                                "acrs": amr, "claims": claims, "user_id": idp })
        });
    (
        field(text(
            "[a-z]{1,8}\\.example\\.com(/[a-z%.]{0,6}){0,2}|[^\"]{0,10}",
        )),
        field(identity.boxed()),
        field(text("([0-9]{1,3}\\.){3}[0-9]{1,3}|[0-9a-f:]{2,12}")),
        field(text("[A-Za-z]{1,3}")),
        field(
            text("[a-z ]{0,5}")
                .prop_map(|t| serde_json::json!({ "token_id": t }))
                .boxed(),
        ),
        field(
            text("[a-z]{0,5}")
                .prop_map(|t| serde_json::json!({ "common_name": t }))
                .boxed(),
        ),
    )
        .prop_map(|(app, identity, ip, country, token, mtls)| {
            serde_json::json!({ "app": app, "identity": identity, "ip": ip, "country": country,
                                "service_token": token, "mtls": mtls })
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn generated_requests_read_the_same(request in request(), drop in proptest::collection::vec(any::<bool>(), 6)) {
        let mut request = request;
        let keys = ["app", "identity", "ip", "country", "service_token", "mtls"];
        for (key, drop) in keys.iter().zip(drop) {
            if drop {
                request.as_object_mut().unwrap().remove(*key);
            }
        }
        same(&request.to_string())?;
    }

    #[test]
    fn any_text_reads_the_same(text in ".{0,120}") {
        same(&text)?;
    }
}
