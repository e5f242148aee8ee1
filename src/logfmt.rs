//! One readable line per log event, whoever wrote it: API Gateway's access log lines (the JSON of
//! `facts::ACCESS_LOG_FORMAT`), the bundled functions' JSON lines (`tracing`'s JSON layout), Lambda's own
//! `START`/`END`/`REPORT` lines, anything else as it is. `wsdeploy logs` prints AWS's events with it and
//! `wsdeploy dev` the local functions' output, so the two read the same. Pure.

use serde_json::{Map, Value};

/// One event, from a log group or a local process.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub(crate) struct Event {
    /// Milliseconds since the epoch.
    pub timestamp: i64,
    /// Who wrote it: `api`, `api-exec`, or the bundled function (`connect`, `disconnect`).
    pub source: String,
    pub message: String,
}

/// ANSI colours, on a terminal only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Colour {
    On,
    Off,
}

impl Colour {
    fn paint(self, code: &str, text: &str) -> String {
        match self {
            Colour::On => format!("\x1b[{code}m{text}\x1b[0m"),
            Colour::Off => text.to_string(),
        }
    }
}

/// `HH:MM:SS.mmm source  text`, in UTC.
pub(crate) fn line(e: &Event, colour: Colour) -> String {
    format!(
        "{} {} {}",
        colour.paint("2", &clock(e.timestamp)),
        colour.paint("36", &format!("{:<10}", e.source)),
        text(&e.source, &e.message, colour)
    )
}

/// The event's text without time or source: what `dev` prints after a function's name. Every value in it went
/// through `printable` before any colour was added.
pub(crate) fn text(source: &str, message: &str, colour: Colour) -> String {
    let message = message.trim_end();
    match serde_json::from_str::<Value>(message) {
        Ok(Value::Object(mut o)) if source.starts_with("api") && o.contains_key("eventType") => {
            o.values_mut().for_each(make_printable);
            access(&o, colour)
        }
        Ok(Value::Object(mut o)) if o.contains_key("level") && o.contains_key("fields") => {
            o.values_mut().for_each(make_printable);
            function(&o, colour)
        }
        _ => printable(message).into_owned(),
    }
}

/// `s` with its control characters (C0, DEL, C1) and the bidirectional overrides written as `\u{1b}`: a log line
/// holds what clients chose (a close reason, a User-Agent, an error a backend echoed), and printed raw an escape
/// sequence in it would drive the reader's terminal (move the cursor, rewrite earlier lines, set the title), and a
/// bidi override would show text other than what is there.
pub(crate) fn printable(s: &str) -> std::borrow::Cow<'_, str> {
    let unsafe_char =
        |c: char| c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}');
    if !s.chars().any(unsafe_char) {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if unsafe_char(c) {
            out.extend(c.escape_unicode());
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

fn make_printable(v: &mut Value) {
    match v {
        Value::String(s) => {
            if let std::borrow::Cow::Owned(p) = printable(s) {
                *s = p;
            }
        }
        Value::Array(a) => a.iter_mut().for_each(make_printable),
        Value::Object(o) => o.values_mut().for_each(make_printable),
        _ => {}
    }
}

fn clock(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).map_or_else(
        |_| ms.to_string(),
        |t| {
            format!(
                "{:02}:{:02}:{:02}.{:03}",
                t.hour(),
                t.minute(),
                t.second(),
                t.millisecond()
            )
        },
    )
}

/// A field API Gateway filled (it writes `-` for a variable without a value).
fn field<'a>(o: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    o.get(key)
        .and_then(Value::as_str)
        .filter(|v| !v.is_empty() && *v != "-")
}

/// `CONNECT $connect AbC= → 200 from 203.0.113.9 (12 ms)`, with what went wrong when something did.
fn access(o: &Map<String, Value>, colour: Colour) -> String {
    let status = field(o, "status").unwrap_or("?");
    let failed = status.parse::<u16>().is_ok_and(|s| s >= 400);
    let mut out = format!(
        "{} {} {} → {}",
        field(o, "eventType").unwrap_or("?"),
        field(o, "routeKey").unwrap_or("-"),
        field(o, "connectionId").unwrap_or("-"),
        if failed {
            colour.paint("31", status)
        } else {
            status.to_string()
        }
    );
    if field(o, "eventType") == Some("CONNECT") {
        if let Some(ip) = field(o, "ip") {
            out.push_str(&format!(" from {ip}"));
        }
    }
    if let Some(ms) = field(o, "integrationLatency") {
        out.push_str(&format!(" ({ms} ms)"));
    }
    for (key, label) in [
        ("error", "error"),
        ("integrationError", "integration error"),
    ] {
        if let Some(v) = field(o, key) {
            out.push_str(&format!(" {label}: {}", colour.paint("31", v)));
        }
    }
    if let Some(id) = field(o, "requestId") {
        out.push_str(&colour.paint("2", &format!(" [{id}]")));
    }
    out
}

/// `INFO backend accepted the connection connection_id=AbC= elapsed_ms=12`.
fn function(o: &Map<String, Value>, colour: Colour) -> String {
    let level = o.get("level").and_then(Value::as_str).unwrap_or("INFO");
    let level = match level {
        "ERROR" => colour.paint("31", level),
        "WARN" => colour.paint("33", level),
        other => other.to_string(),
    };
    let fields = o.get("fields").and_then(Value::as_object);
    let message = fields
        .and_then(|f| f.get("message"))
        .and_then(Value::as_str)
        .unwrap_or_default();
    let mut out = format!("{level} {message}");
    for (k, v) in fields
        .into_iter()
        .flatten()
        .filter(|(k, _)| *k != "message")
    {
        let v = match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        out.push_str(&format!(" {k}={v}"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(source: &str, message: &str) -> Event {
        Event {
            timestamp: 1_767_225_600_123,
            source: source.into(),
            message: message.into(),
        }
    }

    #[test]
    fn an_access_log_line_reads_as_what_happened_to_the_connection() {
        let connect = r#"{"requestId":"r-1","requestTime":"01/Jan/2026:00:00:00 +0000","eventType":"CONNECT","routeKey":"$connect","connectionId":"AbC=","status":"200","integrationError":"-","integrationLatency":"-","error":"-","ip":"203.0.113.9"}"#;
        assert_eq!(
            line(&event("api", connect), Colour::Off),
            "00:00:00.123 api        CONNECT $connect AbC= → 200 from 203.0.113.9 [r-1]"
        );
        let failed = r#"{"requestId":"r-2","eventType":"MESSAGE","routeKey":"auth","connectionId":"AbC=","status":"502","integrationError":"Lambda timed out","integrationLatency":"29000","error":"Internal server error","ip":"203.0.113.9"}"#;
        assert_eq!(
            line(&event("api", failed), Colour::Off),
            "00:00:00.123 api        MESSAGE auth AbC= → 502 (29000 ms) error: Internal server error integration error: Lambda timed out [r-2]"
        );
    }

    #[test]
    fn a_function_line_lays_out_its_fields_and_anything_else_stays_as_it_is() {
        let json = r#"{"timestamp":"2026-01-01T00:00:00.123Z","level":"ERROR","fields":{"message":"backend call failed","connection_id":"AbC=","elapsed_ms":31}}"#;
        assert_eq!(
            line(&event("connect", json), Colour::Off),
            "00:00:00.123 connect    ERROR backend call failed connection_id=AbC= elapsed_ms=31"
        );
        assert_eq!(
            text("connect", json, Colour::On),
            "\x1b[31mERROR\x1b[0m backend call failed connection_id=AbC= elapsed_ms=31"
        );
        let report = "REPORT RequestId: 1 Duration: 2.1 ms\n";
        assert_eq!(
            text("connect", report, Colour::Off),
            "REPORT RequestId: 1 Duration: 2.1 ms"
        );
    }

    /// What a client chose reaches the reader's terminal as text, never as the escape sequence it spells.
    #[test]
    fn control_characters_from_a_log_are_escaped_before_colour_is_added() {
        let close = r#"{"timestamp":"2026-01-01T00:00:00.123Z","level":"INFO","fields":{"message":"disconnected","reason":"bye\u001b]0;owned\u0007\u001b[2J"}}"#;
        assert_eq!(
            text("disconnect", close, Colour::On),
            "INFO disconnected reason=bye\\u{1b}]0;owned\\u{7}\\u{1b}[2J"
        );
        assert_eq!(
            text("api", "plain \x1b[31mred\u{202e}txt", Colour::Off),
            "plain \\u{1b}[31mred\\u{202e}txt"
        );
        assert_eq!(printable("café — ok\t"), "café — ok\\u{9}");
        assert!(matches!(
            printable("nothing to do"),
            std::borrow::Cow::Borrowed(_)
        ));
    }
}
