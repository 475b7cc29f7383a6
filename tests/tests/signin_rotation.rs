//! Signing-key rotation: with `SESSION_SIGNING_KEY_PREVIOUS` set, `/cdn-cgi/access/certs`
//! publishes both keys and application tokens signed with the previous key stay valid (the
//! overlap), while a key that is neither is refused.
#![expect(
    clippy::unwrap_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failure panics"
)]

mod signin_common;

use edge_access_tests::stack::{Stack, StackConfig};
use entra_emulator::fixtures::Fixtures;
use signin_common::{document, echoed, foreign_jwk, resign, warm_up, Agent};

#[test]
fn previous_key_stays_valid_during_a_rotation() {
    if !Stack::should_run("signin_rotation::previous_key_stays_valid_during_a_rotation").unwrap() {
        return;
    }
    let previous = foreign_jwk();
    let previous_kid = previous["kid"].as_str().unwrap().to_owned();
    let fixtures = Fixtures::load_default().unwrap();
    let stack = Stack::start(
        StackConfig::new(document(&fixtures))
            .named("signin-rotation")
            .with_var("SESSION_SIGNING_KEY_PREVIOUS", &previous.to_string()),
    )
    .unwrap();
    warm_up(&stack);
    let current_kid = stack.session_signing_jwk().unwrap()["kid"]
        .as_str()
        .unwrap()
        .to_owned();

    // Both keys are published, current first; the private parts never are.
    let mut agent = Agent::new(&stack);
    let certs = agent.api("/cdn-cgi/access/certs").json().unwrap();
    let kids: Vec<&str> = certs["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap())
        .collect();
    assert_eq!(kids, [current_kid.as_str(), previous_kid.as_str()]);
    for key in certs["keys"].as_array().unwrap() {
        assert_eq!(key["alg"], "RS256");
        assert!(
            key.get("d").is_none() && key.get("p").is_none(),
            "a private part is published"
        );
    }

    // A session's token re-signed with the previous key (as it was before the rotation) works.
    let cookie = agent.signed_in("/staff/rotation", "ada");
    let before_rotation = resign(&cookie, &previous, &previous_kid, |_| {});
    let mut old = Agent::new(&stack);
    old.set_cookie("CF_Authorization", &before_rotation);
    let echo = echoed(&old.navigate("/staff/rotation"));
    assert_eq!(
        echo["headers"]["cf-access-authenticated-user-email"],
        "ada@example.com"
    );

    // A key that is neither current nor previous is refused, even under the previous kid.
    let mut forger = Agent::new(&stack);
    forger.set_cookie(
        "CF_Authorization",
        &resign(&cookie, &foreign_jwk(), &previous_kid, |_| {}),
    );
    assert_eq!(
        forger.navigate("/staff/rotation").status,
        302,
        "sent to sign in"
    );
}
