//! The emulator's injected faults on the key endpoints: the discovery documents as well as
//! the JWKS, faults for the next N requests only, and answers that are not HTTP at all.

#![expect(clippy::unwrap_used, reason = "test code: a failure panics")]

use entra_emulator::client::HttpClient;
use entra_emulator::fixtures::Fixtures;
use entra_emulator::{Emulator, Fault};
use serde_json::{json, Value};

fn emulator() -> Emulator {
    Emulator::start(Fixtures::load_default().unwrap()).unwrap()
}

fn discovery_url(emulator: &Emulator) -> String {
    format!(
        "{}/{}/v2.0/.well-known/openid-configuration",
        emulator.url(),
        emulator.tenant_id()
    )
}

#[test]
fn a_fault_for_the_next_requests_only() {
    let emulator = emulator();
    let client = HttpClient::new();
    emulator.set_jwks_fault_times(Fault::Error500, 2);
    assert_eq!(emulator.jwks_fault(), Fault::Error500);
    assert_eq!(client.get(&emulator.v2_jwks_url()).unwrap().status, 500);
    assert_eq!(client.get(&emulator.v1_jwks_url()).unwrap().status, 500);
    assert_eq!(emulator.jwks_fault(), Fault::None);
    let response = client.get(&emulator.v2_jwks_url()).unwrap();
    assert_eq!(response.status, 200);
    assert_eq!(response.json().unwrap(), emulator.jwks());
    assert_eq!(emulator.jwks_fetches(), 3, "faulty answers count too");

    emulator.set_jwks_fault_times(Fault::Error500, 0);
    assert_eq!(emulator.jwks_fault(), Fault::None);
}

#[test]
fn discovery_documents_take_faults_of_their_own() {
    let emulator = emulator();
    let client = HttpClient::new();
    emulator.set_discovery_fault(Fault::Throttled);
    for url in [
        discovery_url(&emulator),
        format!(
            "{}/{}/.well-known/openid-configuration",
            emulator.url(),
            emulator.tenant_id()
        ),
    ] {
        let response = client.get(&url).unwrap();
        assert_eq!(response.status, 429, "{url}");
        assert_eq!(response.header("retry-after"), Some("1"));
    }
    // The JWKS is not affected, and the other way round.
    assert_eq!(client.get(&emulator.v2_jwks_url()).unwrap().status, 200);
    emulator.set_discovery_fault(Fault::None);
    emulator.set_jwks_fault(Fault::Error500);
    let discovery = client.get(&discovery_url(&emulator)).unwrap();
    assert_eq!(discovery.status, 200);
    assert_eq!(
        discovery.json().unwrap()["jwks_uri"],
        emulator.v2_jwks_url()
    );
    assert_eq!(emulator.discovery_fetches(), 3);
}

#[test]
fn a_broken_answer_fails_the_request_without_a_status() {
    let emulator = emulator();
    let client = HttpClient::new();
    emulator.set_discovery_fault_times(Fault::Broken, 1);
    emulator.set_jwks_fault_times(Fault::Broken, 1);
    assert!(client.get(&discovery_url(&emulator)).is_err());
    assert!(client.get(&emulator.v2_jwks_url()).is_err());
    // Once only: the next requests are answered.
    assert_eq!(client.get(&discovery_url(&emulator)).unwrap().status, 200);
    assert_eq!(client.get(&emulator.v2_jwks_url()).unwrap().status, 200);
    assert_eq!(emulator.discovery_fetches(), 2);
    assert_eq!(emulator.jwks_fetches(), 2);
}

#[test]
fn faults_over_the_admin_endpoint() {
    let emulator = emulator();
    let client = HttpClient::new();
    let admin = format!("{}/_admin/fault", emulator.url());
    let set = |body: Value| client.post_json(&admin, &body).unwrap();

    let answer = set(json!({ "discovery": "broken", "jwks": "error500", "times": 1 }));
    assert_eq!(answer.status, 200, "{}", answer.body);
    let answer = answer.json().unwrap();
    assert_eq!(answer["discovery"], "broken");
    assert_eq!(answer["jwks"], "error500");
    assert_eq!(answer["graph"], "none");
    assert!(client.get(&discovery_url(&emulator)).is_err());
    assert_eq!(client.get(&emulator.v1_jwks_url()).unwrap().status, 500);
    assert_eq!(emulator.discovery_fault(), Fault::None);
    assert_eq!(emulator.jwks_fault(), Fault::None);

    // Without `times`, until changed.
    set(json!({ "jwks": "broken" }));
    for _ in 0..3 {
        assert!(client.get(&emulator.v2_jwks_url()).is_err());
    }
    let stats: Value = client
        .get(&format!("{}/_admin/stats", emulator.url()))
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(stats["jwks_fault"], "broken");
    assert_eq!(stats["discovery_fault"], "none");

    for (body, problem) in [
        (json!({ "jwks": "broken", "times": -1 }), "`times`"),
        (json!({ "jwks": "broken", "times": "once" }), "`times`"),
        (
            json!({ "discovery": "sometimes" }),
            "`discovery` must be one of",
        ),
        (json!({ "times": 1 }), "name a fault"),
    ] {
        let answer = set(body.clone());
        assert_eq!(answer.status, 400, "{body}");
        assert!(answer.body.contains(problem), "{body}: {}", answer.body);
    }
}
