//! `agentsync serve` and HTTP targets, with the real binary on both ends: convergence through
//! a peer, what the peer refuses (token, traversal, size, forged or misnamed artifacts), fifty
//! concurrent clients, a graceful stop, and a mixed fleet (S3, HTTP peer, shared folder).

mod common;

use std::fs;
use std::path::Path;

use common::converge::convergence_case;
use common::{
    ClaudeLog, Machine, Moto, Scratch, Served, assert_converged, files_under, http_request,
    http_status, quiet, shared_folder,
};
use serde_json::Value;

#[test]
fn three_machines_converge_through_an_http_peer() {
    let scratch = Scratch::new("http-converge");
    let server = Machine::new(&scratch.path, "server");
    let served = Served::start(&server, "converge-token");
    convergence_case(8, Some(Path::new(&served.url)), &served.env());
    // The peer's own machine imports what was pushed to it.
    let report = server.sync_alone_ok();
    assert!(
        report["imported_sessions"].as_u64().unwrap() > 0,
        "{report:#}"
    );
}

/// A valid artifact from a machine's mirror: (key, bytes).
fn some_artifact(m: &Machine, dir: &str) -> (String, Vec<u8>) {
    let files = files_under(&m.mirror());
    files
        .into_iter()
        .find(|(k, _)| k.contains(dir))
        .unwrap_or_else(|| panic!("no {dir} in {}'s mirror", m.name))
}

#[test]
fn the_peer_refuses_bad_requests_and_writes_nothing_it_cannot_verify() {
    let scratch = Scratch::new("http-refuse");
    let server = Machine::new(&scratch.path, "server");
    let served = Served::start(&server, "the-token");
    let url = &served.url;
    let auth = [("Authorization", "Bearer the-token")];

    // Tokens.
    assert_eq!(
        http_status("GET", &format!("{url}/v1/list?prefix=roots/"), &[], b""),
        401
    );
    let wrong = [("Authorization", "Bearer the-tokem")];
    assert_eq!(
        http_status("GET", &format!("{url}/v1/list?prefix=roots/"), &wrong, b""),
        401
    );
    assert_eq!(
        http_status("GET", &format!("{url}/v1/list?prefix=roots/"), &auth, b""),
        200
    );

    // Traversal and malformed keys.
    for path in [
        "/v1/objects/../archive.db",
        "/v1/objects/%2e%2e/archive.db",
        "/v1/objects/roots/%2e%2e/%2e%2e/archive.db",
        "/v1/objects//etc/passwd",
        "/v1/objects/a%00b",
        "/v1/objects/serve-token",
    ] {
        assert_eq!(
            http_status("GET", &format!("{url}{path}"), &auth, b""),
            400,
            "GET {path}"
        );
        assert_eq!(
            http_status("PUT", &format!("{url}{path}"), &auth, b"x"),
            400,
            "PUT {path}"
        );
    }
    for prefix in ["../", "%2e%2e/", "/etc", "roots/../../"] {
        let code = http_status("GET", &format!("{url}/v1/list?prefix={prefix}"), &auth, b"");
        assert_eq!(code, 400, "list {prefix}");
    }

    // A real artifact from a client.
    let client = Machine::new(&scratch.path, "client");
    ClaudeLog::write(
        &client.projects(),
        "p",
        "0a0a0a0a-0000-4000-8000-000000000001",
        0,
        3,
    );
    client.ingest();
    client.run(&["sync", "--no-ingest"]).expect(0);
    let (key, bytes) = some_artifact(&client, "/manifests/");
    let object = format!("{url}/v1/objects/{key}");
    let stored = server.mirror().join(&key);

    // Too large for its kind: 413, nothing read into the store.
    let root_key = format!(
        "roots/{}/00000000000000000001-{}.root",
        client.origin,
        "ab".repeat(32)
    );
    let huge = vec![0u8; agentsync_core::limits::ROOT.max_stored + 1];
    assert_eq!(
        http_status("PUT", &format!("{url}/v1/objects/{root_key}"), &auth, &huge),
        413
    );
    // A flipped byte (the id no longer matches): 400, nothing written.
    let mut flipped = bytes.clone();
    let last = flipped.len() - 1;
    flipped[last] ^= 1;
    let (code, body) = http_request("PUT", &object, &auth, &flipped);
    assert_eq!(code, 400, "{}", String::from_utf8_lossy(&body));
    assert!(!stored.exists());
    // Under another origin's name: 400, nothing written.
    let other = key.replacen(&client.origin, "other-0a1b2c", 1);
    let (code, body) = http_request("PUT", &format!("{url}/v1/objects/{other}"), &auth, &bytes);
    assert_eq!(code, 400, "{}", String::from_utf8_lossy(&body));
    assert!(
        String::from_utf8_lossy(&body).contains("OriginMismatch"),
        "{}",
        String::from_utf8_lossy(&body)
    );
    assert!(!server.mirror().join(&other).exists());

    // Write-once: 201, then 200 for the same bytes; 404 for a missing key.
    assert_eq!(http_status("PUT", &object, &auth, &bytes), 201);
    assert_eq!(fs::read(&stored).unwrap(), bytes);
    assert_eq!(http_status("PUT", &object, &auth, &bytes), 200);
    let (code, got) = http_request("GET", &object, &auth, b"");
    assert_eq!((code, got), (200, bytes.clone()));
    let (dir, file) = key.rsplit_once('/').unwrap();
    let missing = format!(
        "{dir}/{}.{}",
        "0".repeat(64),
        file.split_once('.').unwrap().1
    );
    assert_eq!(
        http_status("GET", &format!("{url}/v1/objects/{missing}"), &auth, b""),
        404
    );
    // A valid copy is never replaced, even when asked to.
    assert_eq!(
        http_status("PUT", &format!("{object}?replace=corrupt"), &auth, &bytes),
        409
    );

    // The status endpoint has `status --json`'s data.
    let (code, body) = http_request("GET", &format!("{url}/v1/status"), &auth, b"");
    assert_eq!(code, 200);
    let status: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(status["origin"], server.origin.as_str());

    // SIGTERM: a graceful stop.
    assert!(served.stop().success());
}

#[test]
fn fifty_concurrent_clients_sync_through_one_peer_without_errors() {
    let scratch = Scratch::new("http-fifty");
    let server = Machine::new(&scratch.path, "server");
    let served = Served::start(&server, "fifty");
    let clients: Vec<Machine> = (0..50)
        .map(|i| {
            let m = Machine::new(&scratch.path, &format!("c{i:02}")).with_env(&served.env());
            ClaudeLog::write(
                &m.projects(),
                "p",
                &format!("{i:08x}-0000-4000-8000-000000000001"),
                0,
                2,
            );
            m
        })
        .collect();
    let target = Path::new(&served.url);
    let children: Vec<_> = clients.iter().map(|m| m.spawn_sync(target)).collect();
    for (m, mut child) in clients.iter().zip(children) {
        let status = child.wait().unwrap();
        assert_eq!(status.code(), Some(0), "{}'s sync: {status}", m.name);
    }
    let report = server.sync_alone_ok();
    assert_eq!(report["imported_sessions"], 50, "{report:#}");
}

/// One machine syncs with S3 and serves its store; a second syncs with the first's peer and
/// with a shared folder; a third only with that folder. All three converge.
#[test]
fn a_mixed_fleet_of_s3_http_and_folder_converges() {
    let scratch = Scratch::new("mixed-fleet");
    let moto = Moto::start(&scratch.join("moto"), false);
    moto.create_bucket("fleet");
    let s3 = Path::new("s3://fleet/archive");
    let folder = shared_folder(&scratch.path);
    let first = Machine::new(&scratch.path, "first").with_env(&moto.env());
    let served = Served::start(&first, "fleet-token");
    let second = Machine::new(&scratch.path, "second").with_env(&served.env());
    let third = Machine::new(&scratch.path, "third");
    let peer = Path::new(&served.url);
    for (i, m) in [&first, &second, &third].iter().enumerate() {
        ClaudeLog::write(
            &m.projects(),
            "p",
            &format!("{i:08x}-0000-4000-8000-00000000000a"),
            0,
            3 + i as u64,
        );
        m.ingest();
    }
    let id = |m: &Machine| m.sessions()[0]["id"].as_str().unwrap().to_owned();
    first.json(&["rename", &id(&first), "named on first"]);
    third.json(&["star", &id(&third)]);
    let mut quiet_rounds = 0;
    for _ in 0..8 {
        let reports = [
            first.sync_ok(s3),
            second.sync_ok(peer),
            second.sync_ok(&folder),
            third.sync_ok(&folder),
        ];
        quiet_rounds = if reports.iter().all(quiet) {
            quiet_rounds + 1
        } else {
            0
        };
        if quiet_rounds == 2 {
            break;
        }
    }
    assert_eq!(quiet_rounds, 2, "the fleet settles");
    let snapshot = assert_converged(&[&first, &second, &third]);
    assert_eq!(snapshot["sessions"].as_array().unwrap().len(), 3);
    first.verify_ok(Some(s3));
}

/// A peer that is down: the first request that cannot connect after its retries stops the
/// run's use of it (exit 1, the cause named) instead of every request retrying in turn; the
/// local work (export into the mirror) is done.
#[test]
fn an_unreachable_peer_stops_the_sync_with_the_cause() {
    let scratch = Scratch::new("http-down");
    let m = Machine::new(&scratch.path, "a")
        .with_env(&[("AGENTSYNC_TOKEN".to_owned(), "t".to_owned())]);
    // Port 1 on loopback: nothing listens there.
    let run = m.run(&["sync", "http://127.0.0.1:1", "--no-ingest"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stderr.contains("the target cannot be reached"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("nothing is lost"), "{}", run.stderr);
    assert!(
        !files_under(&m.mirror()).is_empty(),
        "the export to the mirror landed"
    );
}

/// A machine whose user revoked an origin serves nothing it signs: the peer refuses its roots
/// (400, `Revoked`, nothing written) until the user trusts its key again.
#[test]
fn the_peer_refuses_what_a_revoked_origin_signs() {
    let scratch = Scratch::new("http-revoked");
    let server = Machine::new(&scratch.path, "server");
    let served = Served::start(&server, "the-token");
    let auth = [("Authorization", "Bearer the-token")];
    let client = Machine::new(&scratch.path, "client");
    ClaudeLog::write(
        &client.projects(),
        "p",
        "0a0a0a0a-0000-4000-8000-000000000002",
        0,
        3,
    );
    client.ingest();
    client.run(&["sync", "--no-ingest"]).expect(0);
    let (key, bytes) = some_artifact(&client, "roots/");
    let object = format!("{}/v1/objects/{key}", served.url);

    server.run(&["trust", &client.origin, "--revoke"]).expect(0);
    let (code, body) = http_request("PUT", &object, &auth, &bytes);
    let body = String::from_utf8_lossy(&body);
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("Revoked"), "{body}");
    assert!(!server.mirror().join(&key).exists());

    let client_key = client.json(&["status"])["public_key"]
        .as_str()
        .unwrap()
        .to_owned();
    server
        .run(&["trust", &client.origin, &client_key])
        .expect(0);
    assert_eq!(http_status("PUT", &object, &auth, &bytes), 201);
}
