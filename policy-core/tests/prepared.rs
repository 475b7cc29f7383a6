//! A prepared identity decides exactly as the unprepared request: every vector's requests, and
//! generated identities mixing the vectors' groups, emails, methods and identity providers,
//! decided both ways — with the identity prepared by the deciding engine and by another engine
//! compiled from the same document (a stale cache entry). And a decision that records its
//! explanation is the decision made without one, explained in the words of `evaluate`.
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
use policy_core::suite::{DocumentSource, TestFile};
use policy_core::{Decision, Engine, Identity, Request};
use proptest::prelude::*;

static VECTORS: Dir<'_> = include_dir!("$CARGO_MANIFEST_DIR/tests/vectors");

/// Every vector whose document loads: its engine (twice) and its requests.
fn vectors() -> Vec<(String, Engine, Engine, Vec<Request>)> {
    let mut out = Vec::new();
    for file in VECTORS.files() {
        let name = file.path().display().to_string();
        let Some(text) = file.contents_utf8() else {
            continue;
        };
        let Ok(test) = TestFile::from_json(text) else {
            continue;
        };
        let DocumentSource::Inline(document) = &test.document else {
            continue;
        };
        let (Ok(engine), Ok(other)) = (Engine::from_json(document), Engine::from_json(document))
        else {
            continue;
        };
        let requests = test
            .cases()
            .iter()
            .filter_map(|case| Request::from_json(&case.request).ok())
            .collect();
        out.push((name, engine, other, requests));
    }
    out
}

/// What a decision says, comparable.
fn summary(decision: &Decision<'_>) -> String {
    format!(
        "{} app={:?} policy={:?} session={:?}",
        decision.outcome.as_str(),
        decision.app.map(|a| a.id().to_string()),
        decision.policy.map(|p| (p.name.to_string(), p.precedence)),
        decision.session.map(ToString::to_string),
    )
}

/// Both ways, for `request` with `identity`: unprepared, prepared by `engine`, prepared by
/// `other`. Errors compare by message.
fn check(
    engine: &Engine,
    other: &Engine,
    request: &Request,
    identity: Identity,
) -> Result<(), String> {
    let mut with = request.clone();
    with.identity = Some(identity.clone());
    let plain = engine
        .decide(&with)
        .map(|d| summary(&d))
        .map_err(|e| e.to_string());
    let own = engine.prepare_identity(identity.clone());
    assert!(own.is_for(engine));
    let prepared = engine
        .decide_as(request, &own)
        .map(|d| summary(&d))
        .map_err(|e| e.to_string());
    let stale = other.prepare_identity(identity);
    assert!(!stale.is_for(engine));
    let foreign = engine
        .decide_as(request, &stale)
        .map(|d| summary(&d))
        .map_err(|e| e.to_string());
    if plain == prepared && plain == foreign {
        Ok(())
    } else {
        Err(format!(
            "unprepared {plain:?}, prepared {prepared:?}, prepared by another engine {foreign:?}"
        ))
    }
}

#[test]
fn every_vector_request_decides_the_same_prepared() {
    let mut checked = 0;
    for (name, engine, other, requests) in vectors() {
        for request in &requests {
            if let Some(identity) = &request.identity {
                check(&engine, &other, request, identity.clone())
                    .unwrap_or_else(|e| panic!("{name}: {e}"));
                checked += 1;
            }
        }
    }
    assert!(
        checked > 100,
        "only {checked} signed-in requests in the vectors"
    );
}

#[test]
fn every_vector_request_decides_the_same_explained() {
    let mut checked = 0;
    for (name, engine, _, requests) in vectors() {
        for request in &requests {
            let plain = engine.decide(request).map(|d| summary(&d));
            let explained = engine.decide_explained(request);
            let Ok((decision, explanation)) = explained else {
                assert!(plain.is_err(), "{name}: only the explained decision failed");
                continue;
            };
            assert_eq!(plain, Ok(summary(&decision)), "{name}: {request:?}");
            let verdict = engine.evaluate(request).unwrap();
            assert_eq!(verdict.outcome, decision.outcome, "{name}");
            assert_eq!(explanation.lines(request), verdict.trace, "{name}");
            assert!(!verdict.trace.is_empty(), "{name}: no step recorded");
            checked += 1;
        }
    }
    assert!(checked > 300, "only {checked} requests in the vectors");
}

/// Identities built from the parts of every identity in one vector.
fn mixed(requests: &[Request], picks: &[usize]) -> Identity {
    let identities: Vec<&Identity> = requests
        .iter()
        .filter_map(|r| r.identity.as_ref())
        .collect();
    let mut identity = Identity::default();
    if identities.is_empty() {
        return identity;
    }
    let at = |k: usize| identities[picks[k % picks.len()] % identities.len()];
    identity.email = at(0).email.clone();
    identity.idp_id = at(1).idp_id.clone();
    identity.amr = at(2).amr.clone();
    identity.acrs = at(3).acrs.clone();
    identity.claims = at(4).claims.clone();
    identity.user_id = at(5).user_id.clone();
    identity.tenant_id = at(5).tenant_id.clone();
    for k in 6..picks.len() {
        identity.groups.extend(at(k).groups.iter().copied());
    }
    identity
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn mixed_identities_decide_the_same_prepared(
        picks in proptest::collection::vec(any::<usize>(), 6..12),
        target in any::<usize>(),
    ) {
        for (name, engine, other, requests) in vectors() {
            if requests.is_empty() {
                continue;
            }
            let request = &requests[target % requests.len()];
            let identity = mixed(&requests, &picks);
            if let Err(e) = check(&engine, &other, request, identity) {
                prop_assert!(false, "{}: {}", name, e);
            }
        }
    }
}
