//! `wsdeploy dev` under abuse: silent, slow and flooding clients, other sites' pages, and strings chosen to drive a
//! terminal. Each test fails without the guard it names; the soak test runs them all at once beside a well-behaved
//! client.

use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::Message;

use crate::support::devkit::*;
use crate::support::util::cache;

/// `127.0.0.1:PORT` of the gateway.
fn addr(dev: &Dev) -> String {
    dev.ws_url
        .trim_start_matches("ws://")
        .split('/')
        .next()
        .unwrap()
        .to_string()
}

/// How long the server takes to close `stream` (reading and discarding what it sends), or None if it is still
/// open after `limit`.
async fn closed_within(stream: &mut TcpStream, limit: Duration) -> Option<Duration> {
    let started = Instant::now();
    let mut buf = [0u8; 1024];
    while started.elapsed() < limit {
        match tokio::time::timeout(
            limit.saturating_sub(started.elapsed()),
            stream.read(&mut buf),
        )
        .await
        {
            Ok(Ok(0) | Err(_)) => return Some(started.elapsed()),
            Ok(Ok(_)) => {}
            Err(_) => return None,
        }
    }
    None
}

/// The gateway speaks HTTP/1.1 only, and times a connection's first request from the moment it is accepted: a
/// connection that sends nothing, half an HTTP/2 preface, or all of it (h2c with prior knowledge) is closed within
/// `--header-timeout`. (hyper-util's `auto` server sniffed the protocol first, with no timer: all three were held.)
#[tokio::test(flavor = "multi_thread")]
async fn silent_and_http2_connections_are_closed_within_the_header_timeout() {
    let (dev, _) = dev_with_backend("", &["--header-timeout", "1s"], &cache()).await;
    let sends: [&[u8]; 3] = [
        b"",
        b"PRI * HTTP/2.0\r\n",
        b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00",
    ];
    for sent in sends {
        let mut c = TcpStream::connect(addr(&dev)).await.unwrap();
        c.write_all(sent).await.unwrap();
        let closed = closed_within(&mut c, Duration::from_secs(5)).await;
        assert!(
            closed.is_some_and(|t| t < Duration::from_secs(3)),
            "a connection that sent {:?} is still open after 5 s\n{}",
            String::from_utf8_lossy(sent),
            dev.output()
        );
    }
    tokio_tungstenite::connect_async(&dev.ws_url)
        .await
        .unwrap_or_else(|e| panic!("a prompt client still connects: {e}\n{}", dev.output()));
}

/// An `@connections` request whose body trickles is answered 408 once `--header-timeout` has passed, rather than
/// holding its connection for as long as the client likes.
#[tokio::test(flavor = "multi_thread")]
async fn a_management_body_that_trickles_is_cut_off() {
    let (dev, _) = dev_with_backend("", &["--header-timeout", "1s"], &cache()).await;
    let mut c = TcpStream::connect(addr(&dev)).await.unwrap();
    c.write_all(
        b"POST /local/@connections/AAAAAAAAAAAAAAA= HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n0123456789",
    )
    .await
    .unwrap();
    let started = Instant::now();
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(6), async {
        let mut buf = [0u8; 1024];
        while !answer.windows(4).any(|w| w == b"\r\n\r\n") {
            match c.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => answer.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    assert!(
        read.is_ok(),
        "no answer after 6 s of a stalled body\n{}",
        dev.output()
    );
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        answer.starts_with("HTTP/1.1 408"),
        "{answer}\n{}",
        dev.output()
    );
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
}

/// HTTP connections that are not WebSockets are capped (512): the ones beyond are closed at once, while sockets
/// already open keep working, and room comes back as the idle ones time out.
#[tokio::test(flavor = "multi_thread")]
async fn idle_http_connections_beyond_the_cap_are_closed_at_once() {
    let (dev, seen) = dev_with_backend("", &["--header-timeout", "3s"], &cache()).await;
    let (mut ws, _) = authenticated(&dev, &seen).await;
    let mut idle = Vec::new();
    for _ in 0..512 {
        idle.push(TcpStream::connect(addr(&dev)).await.unwrap());
    }
    // Let the gateway accept all of them before one more arrives.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut over = TcpStream::connect(addr(&dev)).await.unwrap();
    let closed = closed_within(&mut over, Duration::from_millis(1500)).await;
    assert!(
        closed.is_some(),
        "the 513th idle connection is held\n{}",
        dev.output()
    );
    ws.send(Message::Text(r#"{"action":"ping"}"#.into()))
        .await
        .unwrap();
    assert_eq!(next_text(&mut ws).await, r#"{"action":"pong"}"#);
    drop(idle);
    let deadline = Instant::now() + Duration::from_secs(10);
    while tokio_tungstenite::connect_async(&dev.ws_url).await.is_err() {
        assert!(Instant::now() < deadline, "no room again\n{}", dev.output());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        dev.output()
            .contains("new HTTP connection(s): 512 are open"),
        "{}",
        dev.output()
    );
}

/// A handshake whose `$connect` is still running holds its place in `--max-connections`: with one allowed, a
/// second handshake meanwhile is refused with 429 rather than admitted beside it.
#[tokio::test(flavor = "multi_thread")]
async fn handshakes_in_progress_count_against_max_connections() {
    let (dev, seen) = dev_with_backend(
        "routes: { $connect: connect, auth: connect, $disconnect: disconnect }\n",
        &["--max-connections", "1"],
        &cache(),
    )
    .await;
    seen.lock().unwrap().delay = Duration::from_secs(2);
    let url = format!("{}?token=good-token", dev.ws_url);
    let first = tokio::spawn({
        let url = url.clone();
        async move { tokio_tungstenite::connect_async(url).await.map(|_| ()) }
    });
    // The first handshake's $connect is waiting for the backend (which answers after 2 s).
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(
        !first.is_finished(),
        "the first handshake is still in progress"
    );
    match tokio_tungstenite::connect_async(&url).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) => assert_eq!(r.status(), 429),
        other => panic!(
            "a second handshake while the first is pending: {other:?}\n{}",
            dev.output()
        ),
    }
    let _ = first.await;
}

/// A client that sends messages faster than they can be routed has at most 8 in flight: the rest are dropped and
/// answered `Too Many Requests`, as API Gateway answers a throttled route, so its memory and its share of the
/// functions are bounded. (Before, each frame spawned a task that held its body for as long as the queue was full.)
#[tokio::test(flavor = "multi_thread")]
async fn a_client_flooding_messages_is_throttled_and_others_are_served() {
    let (dev, seen) = dev_with_backend("", &[], &cache()).await;
    let (mut good, _) = authenticated(&dev, &seen).await;
    seen.lock().unwrap().delay = Duration::from_millis(800);
    let calls_before = seen.lock().unwrap().calls.len();
    let (mut flood, _) = tokio_tungstenite::connect_async(&dev.ws_url).await.unwrap();
    // An accepted token: a routed one would have its socket closed by the function.
    for _ in 0..20 {
        flood
            .send(Message::Text(
                r#"{"action":"auth","token":"good-token"}"#.into(),
            ))
            .await
            .unwrap();
    }
    let mut throttled = 0;
    let mut routed = 0;
    let deadline = Instant::now() + Duration::from_secs(8);
    while throttled + routed < 20 && Instant::now() < deadline {
        let Ok(Some(Ok(Message::Text(t)))) =
            tokio::time::timeout(Duration::from_secs(3), flood.next()).await
        else {
            break;
        };
        let v: serde_json::Value = serde_json::from_str(&t).unwrap();
        match v["message"].as_str() {
            Some("Too Many Requests") => {
                assert!(
                    v["connectionId"].is_string() && v["requestId"].is_string(),
                    "{v}"
                );
                throttled += 1;
            }
            _ => routed += 1,
        }
    }
    assert_eq!(
        (throttled, routed),
        (12, 8),
        "8 routed, 12 dropped\n{}",
        dev.output()
    );
    assert_eq!(seen.lock().unwrap().calls.len() - calls_before, 8);
    good.send(Message::Text(r#"{"action":"ping"}"#.into()))
        .await
        .unwrap();
    assert_eq!(next_text(&mut good).await, r#"{"action":"pong"}"#);
    assert!(
        dev.output()
            .contains("8 of its messages are still being routed"),
        "{}",
        dev.output()
    );
}

/// A page of another site, opened in the developer's browser, cannot open a socket on `dev`; this app's pages,
/// pages served from this machine, clients without an `Origin` and each `--allow-origin` can.
#[tokio::test(flavor = "multi_thread")]
async fn only_this_apps_pages_may_open_a_socket() {
    let (dev, _) = dev_with_backend(
        "dev: { open: 'http://app.test:5173/' }\n",
        &["--allow-origin", "https://staging.example.com"],
        &cache(),
    )
    .await;
    let with_origin = |origin: &str| {
        let mut req = dev.ws_url.as_str().into_client_request().unwrap();
        req.headers_mut().insert("origin", origin.parse().unwrap());
        req
    };
    match tokio_tungstenite::connect_async(with_origin("https://evil.example")).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) => assert_eq!(r.status(), 403),
        other => panic!("another site's page: {other:?}\n{}", dev.output()),
    }
    for origin in [
        "http://app.test:5173",
        "http://localhost:5173",
        "http://127.0.0.1:8080",
        "https://staging.example.com",
    ] {
        tokio_tungstenite::connect_async(with_origin(origin))
            .await
            .unwrap_or_else(|e| panic!("{origin}: {e}\n{}", dev.output()));
    }
    tokio_tungstenite::connect_async(&dev.ws_url)
        .await
        .unwrap_or_else(|e| panic!("no Origin (not a browser): {e}\n{}", dev.output()));
    assert!(
        dev.output()
            .contains("Origin https://evil.example is not one of this app's pages (if it is, add --allow-origin https://evil.example)"),
        "{}",
        dev.output()
    );
}

/// A close reason and a User-Agent are the client's to choose: they reach the developer's terminal with their
/// control characters escaped, never as the escape sequences they spell.
#[tokio::test(flavor = "multi_thread")]
async fn what_a_client_chooses_reaches_the_terminal_escaped() {
    let (dev, _) = dev_with_backend("", &[], &cache()).await;
    // Header values cannot hold C0 controls, but they can hold UTF-8 bytes: U+009B is the one-byte CSI of C1.
    let mut req = dev.ws_url.as_str().into_client_request().unwrap();
    req.headers_mut().insert(
        "origin",
        axum::http::HeaderValue::from_bytes("https://evil.example/\u{9b}2J".as_bytes()).unwrap(),
    );
    let _ = tokio_tungstenite::connect_async(req).await;
    let (mut ws, _) = tokio_tungstenite::connect_async(&dev.ws_url).await.unwrap();
    ws.send(Message::Close(Some(
        tokio_tungstenite::tungstenite::protocol::CloseFrame {
            code: 4000.into(),
            reason: "bye\x1b]0;owned\x07\x1b[2J".into(),
        },
    )))
    .await
    .unwrap();
    let line = wait_for("the disconnect line", || {
        dev.output()
            .lines()
            .find(|l| l.starts_with("disconnect "))
            .map(str::to_string)
    })
    .await;
    assert!(
        line.contains(r"(4000: bye\u{1b}]0;owned\u{7}\u{1b}[2J)"),
        "{line:?}"
    );
    assert!(
        dev.output()
            .contains(r"Origin https://evil.example/\u{9b}2J is not"),
        "{}",
        dev.output()
    );
    assert!(
        !dev.output().contains(['\x1b', '\x07', '\u{9b}']),
        "a raw control character reached the output:\n{:?}",
        dev.output()
    );
}

/// Frames of one message of `bytes` bytes, in frames of at most 32 KB (API Gateway's frame limit; 128 KB a message):
/// an `auth` with an accepted token (a refused one would have the socket closed), padded.
fn fragmented(bytes: usize) -> Vec<Message> {
    let body = format!(
        r#"{{"action":"auth","token":"good-token","pad":"{}"}}"#,
        "x".repeat(bytes - 50)
    );
    let chunks: Vec<&[u8]> = body.as_bytes().chunks(32 * 1024).collect();
    let last = chunks.len() - 1;
    chunks
        .into_iter()
        .enumerate()
        .map(|(i, c)| {
            let opcode = if i == 0 {
                OpCode::Data(Data::Text)
            } else {
                OpCode::Data(Data::Continue)
            };
            Message::Frame(Frame::message(c.to_vec(), opcode, i == last))
        })
        .collect()
}

/// The dev process's resident memory, in KiB.
fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Every abusive client at once for 30 s, beside one that behaves.
#[tokio::test(flavor = "multi_thread")]
async fn soak_every_abuse_at_once_while_a_good_client_is_served() {
    const SOAK: Duration = Duration::from_secs(30);
    let (mut dev, seen) = dev_with_backend("", &["--header-timeout", "2s"], &cache()).await;
    seen.lock().unwrap().forget = true;
    let at = addr(&dev);
    let until = Instant::now() + SOAK;
    let mut abusers = Vec::new();
    // Silent TCP connections, half HTTP/2 prefaces, and trickled headers, as many as the cap takes, renewed as
    // the gateway closes them.
    for sent in [
        &b""[..],
        b"PRI * HTTP/2.0\r\n",
        b"GET /local HTTP/1.1\r\nHost: x\r\n",
    ] {
        let at = at.clone();
        abusers.push(tokio::spawn(async move {
            let mut held = Vec::new();
            while Instant::now() < until {
                if let Ok(mut c) = TcpStream::connect(&at).await {
                    let _ = c.write_all(sent).await;
                    held.push(c);
                }
                if held.len() >= 400 {
                    held.remove(0);
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }));
    }
    // A body trickled to @connections, one byte a second.
    let trickle_at = at.clone();
    abusers.push(tokio::spawn(async move {
        while Instant::now() < until {
            let Ok(mut c) = TcpStream::connect(&trickle_at).await else { continue };
            let _ = c.write_all(b"POST /local/@connections/AAAAAAAAAAAAAAA= HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n").await;
            while Instant::now() < until && c.write_all(b"x").await.is_ok() {
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }));
    // 128 KB messages as fast as the socket takes them, never reading an answer.
    let flood_url = dev.ws_url.clone();
    abusers.push(tokio::spawn(async move {
        let (mut flood, _) = tokio_tungstenite::connect_async(&flood_url).await.unwrap();
        while Instant::now() < until {
            for frame in fragmented(128 * 1024 - 64) {
                if flood.feed(frame).await.is_err() {
                    return;
                }
            }
            let _ = flood.flush().await;
        }
    }));
    // Another site's page, and close reasons that spell terminal escapes.
    let page_url = dev.ws_url.clone();
    abusers.push(tokio::spawn(async move {
        while Instant::now() < until {
            let mut req = page_url.as_str().into_client_request().unwrap();
            req.headers_mut()
                .insert("origin", "https://evil.example".parse().unwrap());
            let _ = tokio_tungstenite::connect_async(req).await;
            if let Ok((mut ws, _)) = tokio_tungstenite::connect_async(&page_url).await {
                let _ = ws
                    .send(Message::Close(Some(
                        tokio_tungstenite::tungstenite::protocol::CloseFrame {
                            code: 4000.into(),
                            reason: "\x1b[2J\x1b]0;owned\x07".into(),
                        },
                    )))
                    .await;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }));

    // The good client: a round trip every 100 ms (the heartbeat, answered by the gateway), an `auth` through the
    // function and the backend every tenth, and the dev process's memory meanwhile.
    let pid = dev.child.id();
    let (mut good, _) = tokio_tungstenite::connect_async(&dev.ws_url).await.unwrap();
    let (mut round_trips, mut auths) = (Vec::new(), Vec::new());
    let mut peak_rss = 0;
    for i in 0_u32.. {
        if Instant::now() >= until {
            break;
        }
        let (send, expect) = if i % 10 == 0 {
            (
                r#"{"action":"auth","token":"good-token"}"#,
                r#"{"ok":true,"type":"auth"}"#,
            )
        } else {
            (r#"{"action":"ping"}"#, r#"{"action":"pong"}"#)
        };
        let sent = Instant::now();
        good.send(Message::Text(send.into())).await.unwrap();
        let answer = tokio::time::timeout(Duration::from_secs(2), good.next()).await;
        let rtt = sent.elapsed();
        match answer {
            Ok(Some(Ok(Message::Text(t)))) if t.as_str() == expect => {
                if i % 10 == 0 {
                    auths.push(rtt);
                } else {
                    round_trips.push(rtt);
                }
            }
            other => panic!(
                "the good client's {send} failed: {other:?}\n{}",
                dev.output()
            ),
        }
        peak_rss = peak_rss.max(rss_kib(pid));
        tokio::time::sleep(Duration::from_millis(100).saturating_sub(rtt)).await;
    }
    for a in abusers {
        let _ = a.await;
    }
    round_trips.sort();
    auths.sort();
    let p99 = round_trips[round_trips.len() * 99 / 100];
    eprintln!(
        "soak: {} round trips, p50 {:?}, p99 {:?}, max {:?}; {} auths, max {:?}; dev's peak RSS {} MiB",
        round_trips.len(),
        round_trips[round_trips.len() / 2],
        p99,
        round_trips.last().unwrap(),
        auths.len(),
        auths.last().unwrap(),
        peak_rss / 1024
    );
    assert!(
        round_trips.len() >= 200,
        "{} round trips",
        round_trips.len()
    );
    assert!(
        *auths.last().unwrap() < Duration::from_secs(1),
        "auths {auths:?}"
    );
    assert!(p99 < Duration::from_millis(50), "p99 {p99:?}");
    assert!(
        peak_rss < SOAK_RSS_BOUND_KIB,
        "dev's peak RSS {peak_rss} KiB"
    );
    // Each abuse met its guard.
    let out = dev.output();
    for guard in [
        "new HTTP connection(s): 512 are open",
        "still being routed → Too Many Requests",
        "its body took longer than 2 s to arrive",
        "Origin https://evil.example is not one of this app's pages",
        r"(4000: \u{1b}[2J\u{1b}]0;owned\u{7})",
    ] {
        assert!(
            out.contains(guard),
            "no sign of {guard:?} in dev's output:\n{out}"
        );
    }
    assert!(!out.contains('\x1b'), "a raw escape reached the output");
    drop(good);
    assert_eq!(
        dev.stop(),
        0,
        "dev ends cleanly after the soak\n{}",
        dev.output()
    );
}

/// Set from measurement: the soak's peak was 51 MiB on the 2-core machine the suite runs on (its `eprintln!` says
/// it each run); the bound leaves room for a slower one. Without the per-socket bound the flood alone grows it
/// past any bound.
const SOAK_RSS_BOUND_KIB: u64 = 128 * 1024;

/// A socket whose `auth` is refused is told why and then closed by the `connect` function itself (`@connections`
/// POST, then DELETE, as its role), rather than kept open by the heartbeat and free to retry `auth` for ever.
#[tokio::test(flavor = "multi_thread")]
async fn a_refused_auth_is_told_why_and_the_socket_closed() {
    let (dev, _) = dev_with_backend("", &[], &cache()).await;
    for token in ["bad-token", "has space"] {
        let (mut ws, _) = tokio_tungstenite::connect_async(&dev.ws_url).await.unwrap();
        ws.send(Message::Text(
            format!(r#"{{"action":"auth","token":"{token}"}}"#).into(),
        ))
        .await
        .unwrap();
        let reply: serde_json::Value = serde_json::from_str(&next_text(&mut ws).await).unwrap();
        assert_eq!(reply["ok"], false, "{reply}");
        assert_eq!(
            close_code(&mut ws, 5).await,
            Some(1000),
            "{token}: closed after the refusal\n{}",
            dev.output()
        );
    }
    assert!(
        dev.output()
            .contains("closed the socket after a refused auth"),
        "{}",
        dev.output()
    );
}
