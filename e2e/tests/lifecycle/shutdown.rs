//! Shutdown: a client holding a request open does not hold the server's shutdown up beyond
//! `--shutdown-grace-seconds`.

use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;

use crate::harness::Harness;

#[tokio::test]
async fn a_stalled_request_does_not_hold_shutdown_beyond_the_grace_period() {
    let app = Harness::start_with_args(|_| {}, &["--shutdown-grace-seconds", "1"]).await;
    // A webhook whose body never finishes arriving: the receiver waits for it.
    let address = app.app_url.trim_start_matches("http://").to_owned();
    let mut stalled = tokio::net::TcpStream::connect(&address).await.unwrap();
    stalled
        .write_all(
            b"POST /webhooks HTTP/1.1\r\nHost: app\r\nContent-Type: application/json\r\n\
              Content-Length: 1000\r\n\r\n{\"id\": 1",
        )
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = Instant::now();
    tokio::time::timeout(Duration::from_secs(15), app.stop())
        .await
        .expect("the shutdown waited for the stalled request past its grace period");
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(900),
        "in-flight requests get their grace period first (stopped after {took:?})"
    );
    drop(stalled);
}
