//! The demo origin echoes what it receives.

use edge_access_tests::origin::Origin;
use entra_emulator::client::HttpClient;
use serde_json::json;

#[test]
fn it_echoes_method_path_headers_and_body() {
    let origin = Origin::start().unwrap();
    let client = HttpClient::new();

    let response = client
        .get_with(
            &format!("{}/reports/2026?q=a%20b&x=1", origin.url()),
            &[
                ("Cf-Access-Authenticated-User-Email", "ada@example.com"),
                ("X-Twice", "one"),
                ("X-Twice", "two"),
            ],
        )
        .unwrap();
    assert_eq!(response.status, 200);
    assert!(response
        .header("content-type")
        .unwrap()
        .starts_with("application/json"));
    let echo = response.json().unwrap();
    assert_eq!(echo["method"], "GET");
    assert_eq!(echo["path"], "/reports/2026?q=a%20b&x=1");
    assert_eq!(
        echo["headers"]["cf-access-authenticated-user-email"],
        "ada@example.com"
    );
    assert_eq!(echo["headers"]["x-twice"], "one, two");
    assert_eq!(echo["body"], "");

    let response = client
        .request(
            "PUT",
            &format!("{}/items/1", origin.url()),
            &[("content-type", "text/plain")],
            "hello origin".as_bytes(),
        )
        .unwrap();
    let echo = response.json().unwrap();
    assert_eq!(echo["method"], "PUT");
    assert_eq!(echo["body"], "hello origin");

    let echo = client
        .post_json(&format!("{}/", origin.url()), &json!({ "a": 1 }))
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(echo["body"], r#"{"a":1}"#);
    assert_eq!(origin.requests(), 3);
}

#[test]
fn it_stops_when_dropped() {
    let origin = Origin::start().unwrap();
    let addr = origin.addr();
    drop(origin);
    assert!(std::net::TcpStream::connect(addr).is_err());
}
