//! Templates (§3b): one sandboxed minijinja set-up shared by the webhook
//! (compile at admission) and the agent (render after every fetch).
//!
//! Sandbox by construction: minijinja is built without `multi_template`
//! (`include`/`import`/`extends` do not parse), without `macros` and without a
//! loader; it has no env or filesystem access. Rendering is strict (undefined
//! is an error), metered (fuel) and capped (output size). Render errors name
//! the template line from the template source, never a value.

use std::collections::BTreeMap;
use std::io;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, mpsc};
use std::time::Duration;

use base64::Engine as _;
use minijinja::{Environment, ErrorKind, UndefinedBehavior, Value};

/// Largest template source (an annotation value).
pub const MAX_TEMPLATE_BYTES: usize = 64 * 1024;
/// Largest rendered file.
pub const MAX_OUTPUT_BYTES: usize = 1024 * 1024;
/// Instructions one render may execute: plenty for a config over 500 secrets,
/// far too little for a loop meant to pin the agent's CPU.
pub const FUEL: u64 = 500_000;
/// Longest one render may run. Fuel counts instructions, not bytes: within
/// it, a loop over a filter on a large string (`x | replace(...)` on 1 MB,
/// 100,000 times) can cost many minutes of CPU (docs/decisions.md, "A render
/// has a time budget").
pub const RENDER_BUDGET: Duration = Duration::from_secs(10);
/// Stack of the render thread: the agent's main thread has as much.
const RENDER_STACK_BYTES: usize = 8 * 1024 * 1024;
/// Most `template-*` annotations one pod may have.
pub const MAX_TEMPLATES: usize = 100;
/// Source lines quoted in errors are cut here.
const MAX_QUOTE_CHARS: usize = 120;

/// Prefix of our own filter errors: they are the only error details passed
/// on at render time, because they are known never to quote a value.
const OWN: &str = "filter ";

/// The environment both binaries use: strict, fueled, our filters added.
fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_fuel(Some(FUEL));
    // A rendered file ends as its template does (Jinja would drop the last newline).
    env.set_keep_trailing_newline(true);
    env.add_filter("b64encode", b64encode);
    env.add_filter("b64decode", b64decode);
    env.add_filter("urlencode", urlencode);
    env
}

/// RFC 3986: everything but unreserved characters is escaped, `/` included,
/// so a password is safe anywhere in a URL (Jinja's own keeps `/`).
fn urlencode(v: &Value) -> Result<String, minijinja::Error> {
    let s = match v.as_str() {
        Some(s) => s.to_string(),
        None if v.is_number() => v.to_string(),
        None => return Err(own_error("urlencode needs a string")),
    };
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    Ok(out)
}

fn b64encode(v: &Value) -> Result<String, minijinja::Error> {
    let bytes = match (v.as_str(), v.as_bytes()) {
        (Some(s), _) => s.as_bytes(),
        (None, Some(b)) => b,
        _ => return Err(own_error("b64encode needs a string")),
    };
    Ok(base64::engine::general_purpose::STANDARD.encode(bytes))
}

fn b64decode(v: &str) -> Result<String, minijinja::Error> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(v.trim())
        .map_err(|_| own_error("b64decode: the input is not valid base64"))?;
    String::from_utf8(bytes).map_err(|_| own_error("b64decode: the decoded bytes are not UTF-8"))
}

fn own_error(detail: &str) -> minijinja::Error {
    minijinja::Error::new(ErrorKind::InvalidOperation, format!("{OWN}{detail}"))
}

/// Compile `source`; a syntax error names its line (the text is the
/// template's own, never a secret's).
pub fn check(source: &str) -> Result<(), String> {
    if source.len() > MAX_TEMPLATE_BYTES {
        return Err(format!(
            "template is {} bytes; the limit is {MAX_TEMPLATE_BYTES}",
            source.len()
        ));
    }
    let env = environment();
    compile(&env, source).map(|_| ())
}

/// Compile `source`. minijinja counts columns in a `u16`, so a syntax error
/// at the end of a 65,535-character line overflows it: a panic in a debug
/// build, a wrapped column in release. Caught here, so it is a template
/// error in every build (found by the webhook's fuzz run in CI).
fn compile<'e, 's>(
    env: &'e Environment<'static>,
    source: &'s str,
) -> Result<minijinja::Template<'e, 's>, String> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        env.template_from_str(source)
    })) {
        Ok(compiled) => compiled.map_err(|e| compile_message(&e)),
        Err(_) => Err(
            "syntax error: the template cannot be parsed (a line of 65,535 characters or more?)"
                .into(),
        ),
    }
}

fn compile_message(e: &minijinja::Error) -> String {
    let line = e
        .line()
        .map(|l| format!(" on line {l}"))
        .unwrap_or_default();
    let detail = e.detail().unwrap_or("invalid template");
    let hint = if detail.contains("unknown statement") {
        " (include, import, extends, macro and block are not available in secrets-injector templates)"
    } else {
        ""
    };
    format!("syntax error{line}: {detail}{hint}")
}

/// `secrets[<name>]` of one render. `Debug` shows the names only.
#[derive(Default)]
pub struct Secrets(BTreeMap<String, Value>);

impl Secrets {
    /// `secrets[name]` = the value (parsed JSON when JSON, else text or bytes).
    pub fn insert(&mut self, name: &str, bytes: &[u8]) {
        self.0.insert(name.to_string(), secret_value(bytes));
    }
    /// `secrets[name][entry]` for every entry of a selection (§3c).
    pub fn insert_dir<'a>(
        &mut self,
        name: &str,
        entries: impl IntoIterator<Item = (&'a str, &'a [u8])>,
    ) {
        let dir: BTreeMap<&str, Value> = entries
            .into_iter()
            .map(|(k, v)| (k, secret_value(v)))
            .collect();
        self.0.insert(name.to_string(), Value::from_serialize(&dir));
    }
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.0.keys()).finish()
    }
}

/// The template value of one secret: parsed JSON when it is JSON, else its
/// text, else its bytes.
fn secret_value(bytes: &[u8]) -> Value {
    if let Ok(j) = serde_json::from_slice::<serde_json::Value>(bytes) {
        return Value::from_serialize(&j);
    }
    match std::str::from_utf8(bytes) {
        Ok(s) => Value::from(s),
        Err(_) => Value::from_bytes(bytes.to_vec()),
    }
}

/// Render `source` with `secrets[<name>]` bound to `secrets`.
pub fn render(source: &str, secrets: &Secrets) -> Result<Vec<u8>, String> {
    let env = environment();
    let tmpl = compile(&env, source)?;
    let ctx = minijinja::context! { secrets => Value::from_serialize(&secrets.0) };
    let mut out = Capped::default();
    let rendered = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        tmpl.render_captured_to(ctx, &mut out)
    }));
    match rendered {
        Ok(Ok(_)) => Ok(out.buf),
        // `Capped` unwinds past the cap (it never returns an error).
        Err(_) if out.over => Err(format!(
            "the output is larger than {MAX_OUTPUT_BYTES} bytes"
        )),
        Ok(Err(e)) => Err(render_message(&e, source)),
        // A panic in the engine itself (e.g. minijinja's `len * n` when a
        // sequence is repeated ~10^19 times overflows in a debug build): the
        // template fails, the process goes on.
        Err(_) => Err("the template engine failed on this template (an internal error)".into()),
    }
}

/// Renders that outlived their budget and still run: Rust cannot stop a
/// thread, so one is abandoned, and it holds back every later render until
/// it ends.
static ABANDONED: AtomicUsize = AtomicUsize::new(0);

/// The render thread's side of settling: when the wait gave up first, it
/// counted this render as abandoned, and its end uncounts it.
struct Settle(Arc<AtomicBool>);

impl Drop for Settle {
    fn drop(&mut self) {
        if self.0.swap(true, Ordering::AcqRel) {
            ABANDONED.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

/// [`render`] on its own thread, given up after `budget`. An abandoned render
/// runs on until it ends or the process does (the agent exits on a
/// permanent failure at start-up); meanwhile later calls fail at once
/// instead of starting another, so at most one core is ever spent this way.
pub fn render_within(
    source: &str,
    secrets: &Arc<Secrets>,
    budget: Duration,
) -> Result<Vec<u8>, String> {
    if ABANDONED.load(Ordering::Acquire) > 0 {
        return Err(format!(
            "an earlier render that ran over its {} s budget is still running; not starting another",
            budget.as_secs_f64()
        ));
    }
    let (tx, rx) = mpsc::sync_channel(1);
    // Set by whichever comes first: the thread finishing, or the wait giving up.
    let settled = Arc::new(AtomicBool::new(false));
    let (source_owned, secrets, theirs) =
        (source.to_owned(), Arc::clone(secrets), Arc::clone(&settled));
    std::thread::Builder::new()
        .name("template-render".into())
        .stack_size(RENDER_STACK_BYTES)
        .spawn(move || {
            // Settles after the send, and on unwind too if `render` panics.
            let _settle = Settle(theirs);
            let _ = tx.send(render(&source_owned, &secrets));
        })
        .map_err(|e| format!("cannot start a render thread: {e}"))?;
    let panicked = || Err("the render ended without a result (it panicked)".into());
    match rx.recv_timeout(budget) {
        Err(mpsc::RecvTimeoutError::Timeout) => {
            // Counted before settling, so the thread's decrement (which
            // needs this side to have settled first) can never come first.
            ABANDONED.fetch_add(1, Ordering::AcqRel);
            if !settled.swap(true, Ordering::AcqRel) {
                return Err(format!(
                    "rendering took longer than {} s (a loop over large strings?); stopped waiting for it",
                    budget.as_secs_f64()
                ));
            }
            // It finished just now: its result is in the channel.
            ABANDONED.fetch_sub(1, Ordering::AcqRel);
            rx.recv().unwrap_or_else(|_| panicked())
        }
        Ok(result) => result,
        Err(mpsc::RecvTimeoutError::Disconnected) => panicked(),
    }
}

/// Kind, line and the template's own source line; a detail only when it is ours.
fn render_message(e: &minijinja::Error, source: &str) -> String {
    let what = match (e.kind(), e.detail()) {
        (ErrorKind::OutOfFuel, _) => {
            format!("ran out of fuel after {FUEL} steps (a loop too large?)")
        }
        (ErrorKind::UndefinedError, _) => {
            "undefined value (a secret or key that does not exist)".into()
        }
        (_, Some(d)) if d.starts_with(OWN) => d[OWN.len()..].to_string(),
        (kind, _) => kind.to_string(),
    };
    match e
        .line()
        .and_then(|l| source.lines().nth(l.wrapping_sub(1)).map(|t| (l, t)))
    {
        Some((l, text)) => format!("line {l}: {what} in `{}`", quote(text)),
        None => what,
    }
}

fn quote(line: &str) -> String {
    let t = line.trim();
    match t.char_indices().nth(MAX_QUOTE_CHARS) {
        Some((i, _)) => format!("{}…", &t[..i]),
        None => t.to_string(),
    }
}

/// A writer that refuses to grow past [`MAX_OUTPUT_BYTES`].
///
/// Past the cap it unwinds instead of returning an error: minijinja prints a
/// sequence through `fmt::DebugList`, which keeps pulling items after a
/// write fails, and `[1] * 9223372036854775807` is a lazy sequence of ~10^19
/// items that fuel does not meter (one instruction), so an error alone
/// leaves the render walking it for ever. `resume_unwind` skips the panic
/// hook (the agent's would report a crash); [`render`] catches it.
#[derive(Default)]
struct Capped {
    buf: Vec<u8>,
    over: bool,
}

impl io::Write for Capped {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        if self.buf.len() + b.len() > MAX_OUTPUT_BYTES {
            self.over = true;
            std::panic::resume_unwind(Box::new("output size cap"));
        }
        self.buf.extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CANARY: &str = "canary-Zq8v-not-for-logs";

    #[test]
    fn a_syntax_error_at_the_end_of_a_line_as_long_as_the_limit_is_a_template_error() {
        // An unterminated string running to column 65,535 (a u16 in minijinja).
        let src = format!("{{{{ '{}", "x".repeat(MAX_TEMPLATE_BYTES - 4));
        assert_eq!(src.len(), MAX_TEMPLATE_BYTES);
        let checked = check(&src);
        assert!(
            matches!(&checked, Err(e) if e.starts_with("syntax error")),
            "{checked:?}"
        );
        assert_eq!(render(&src, &Secrets::default()).err(), checked.err());
    }

    #[test]
    fn a_sequence_repeated_beyond_any_size_stops_at_the_output_cap() {
        // ~10^19 items, one fuel step: before, the render never ended.
        let db = secrets(&[("db", r#"{"u":"a","p":"b"}"#)]);
        for src in [
            "{{ [1] * 9223372036854775807 }}",
            "{% for i in range(3) %}{{ ((9223372036854775807 + 1 - x is defined) * [secrets.db.u]) }}{% endfor %}",
        ] {
            assert_eq!(
                render(src, &db),
                Err(format!(
                    "the output is larger than {MAX_OUTPUT_BYTES} bytes"
                )),
                "{src}"
            );
        }
        // Two items × 2^63 - 1 overflows minijinja's length: a panic in a
        // debug build (the engine error), a wrapped length in release (the cap).
        let r = render("{{ (secrets.db | items) * 9223372036854775807 }}", &db);
        assert!(
            matches!(&r, Err(e) if e.contains("larger than") || e.contains("internal error")),
            "{r:?}"
        );
        assert!(!format!("{r:?}").contains("\"a\""), "no value in {r:?}");
    }

    fn secrets(pairs: &[(&str, &str)]) -> Secrets {
        let mut s = Secrets::default();
        for (k, v) in pairs {
            s.insert(k, v.as_bytes());
        }
        s
    }

    fn render_str(src: &str, pairs: &[(&str, &str)]) -> Result<String, String> {
        render(src, &secrets(pairs)).map(|b| String::from_utf8(b).unwrap())
    }

    #[test]
    fn json_secrets_are_objects_and_others_strings() {
        let s = [
            ("db", r#"{"user":"app","password":"p@ss/w rd"}"#),
            ("key", "plain"),
        ];
        let out = render_str(
            "postgres://{{ secrets.db.user }}:{{ secrets[\"db\"].password | urlencode }}@h/{{ secrets.key }}",
            &s,
        )
        .unwrap();
        assert_eq!(out, "postgres://app:p%40ss%2Fw%20rd@h/plain");
    }

    #[test]
    fn selections_are_maps_by_relative_name() {
        let mut s = Secrets::default();
        s.insert_dir(
            "orders",
            [("api-key", &b"k1"[..]), ("db", &br#"{"u":"x"}"#[..])],
        );
        let out = render(
            "{{ secrets[\"orders\"][\"api-key\"] }} {{ secrets.orders.db.u }}",
            &s,
        )
        .unwrap();
        assert_eq!(out, b"k1 x");
        assert_eq!(format!("{s:?}"), "{\"orders\"}");
    }

    #[test]
    fn filters() {
        let s = [
            ("k", "  hi  "),
            ("b", "aGVsbG8="),
            ("j", r#"{"a":[1,"x"]}"#),
        ];
        let out = render_str(
            "{{ secrets.k | trim }}|{{ secrets.k | trim | b64encode }}|{{ secrets.b | b64decode }}|{{ secrets.j | tojson }}|{{ secrets.none | default('d') }}",
            &s,
        )
        .unwrap();
        assert_eq!(out, "hi|aGk=|hello|{\"a\":[1,\"x\"]}|d");
    }

    #[test]
    fn loops_tests_and_the_trailing_newline_work_as_documented() {
        let s = [("db", r#"{"a":"1","b":"2"}"#)];
        let out = render_str(
            "{% for k, v in secrets.db | items %}{{ k }}={{ v }};{% endfor %}\n{% if secrets.db.c is defined %}c{% else %}no c{% endif %}\n",
            &s,
        )
        .unwrap();
        assert_eq!(out, "a=1;b=2;\nno c\n");
    }

    #[test]
    fn b64decode_errors_name_no_value() {
        let e = render_str("{{ secrets.k | b64decode }}", &[("k", CANARY)]).unwrap_err();
        assert_eq!(
            e,
            "line 1: b64decode: the input is not valid base64 in `{{ secrets.k | b64decode }}`"
        );
    }

    #[test]
    fn syntax_errors_name_the_line() {
        let e = check("a\nb {{ secrets.x }\nc").unwrap_err();
        assert!(e.starts_with("syntax error on line 2: "), "{e}");
        let e = check("{% for x in y %}").unwrap_err();
        assert!(e.contains("syntax error on line 1"), "{e}");
        check("{{ secrets.db.password | urlencode }}").unwrap();
    }

    #[test]
    fn include_import_extends_and_macros_do_not_parse() {
        for src in [
            "{% include '/etc/passwd' %}",
            "{% import 'x' as y %}",
            "{% extends 'base' %}",
            "{% from 'x' import y %}",
            "{% macro m() %}{% endmacro %}",
        ] {
            let e = check(src).unwrap_err();
            assert!(
                e.contains("not available in secrets-injector templates"),
                "{src}: {e}"
            );
        }
    }

    #[test]
    fn there_is_no_env_or_filesystem() {
        for src in [
            "{{ env.HOME }}",
            "{{ environ('HOME') }}",
            "{{ open('/etc/passwd') }}",
        ] {
            assert!(render_str(src, &[]).is_err(), "{src}");
        }
    }

    #[test]
    fn undefined_is_strict_and_names_the_line_not_the_value() {
        let e = render_str(
            "user={{ secrets.db.user }}\npass={{ secrets.db.pasword }}",
            &[("db", &format!(r#"{{"user":"u","password":"{CANARY}"}}"#))],
        )
        .unwrap_err();
        assert_eq!(
            e,
            "line 2: undefined value (a secret or key that does not exist) in `pass={{ secrets.db.pasword }}`"
        );
        let e = render_str("{{ secrets.nope }}", &[]).unwrap_err();
        assert!(e.starts_with("line 1: undefined value"), "{e}");
    }

    #[test]
    fn other_errors_never_quote_a_value() {
        for src in [
            "{{ secrets.k + 1 }}",
            "{{ secrets.k | int }}",
            "{{ secrets.k() }}",
            "{{ secrets.k[0:2] | attr('x') }}",
            "{{ secrets.k.x.y }}",
        ] {
            if let Err(e) = render_str(src, &[("k", CANARY)]) {
                assert!(!e.contains(CANARY), "{src}: {e}");
            }
        }
    }

    #[test]
    fn huge_loops_run_out_of_fuel() {
        let e = render_str(
            "{% for a in range(10000) %}{% for b in range(10000) %}{% endfor %}{% endfor %}",
            &[],
        )
        .unwrap_err();
        assert!(e.contains("ran out of fuel"), "{e}");
    }

    #[test]
    fn output_is_capped() {
        let e = render_str(
            "{% for a in range(3000) %}{{ secrets.k }}{% endfor %}",
            &[("k", &"x".repeat(1000))],
        )
        .unwrap_err();
        assert_eq!(
            e,
            format!("the output is larger than {MAX_OUTPUT_BYTES} bytes")
        );
    }

    #[test]
    fn output_of_exactly_the_cap_renders_and_one_byte_more_does_not() {
        assert_eq!(MAX_OUTPUT_BYTES, 1 << 20);
        let value = "x".repeat(1024);
        let kib = [("k", value.as_str())];
        let src = "{% for a in range(1024) %}{{ secrets.k }}{% endfor %}";
        assert_eq!(render_str(src, &kib).unwrap().len(), MAX_OUTPUT_BYTES);
        let e = render_str(&format!("{src}!"), &kib).unwrap_err();
        assert_eq!(
            e,
            format!("the output is larger than {MAX_OUTPUT_BYTES} bytes")
        );
    }

    #[test]
    fn urlencode_takes_strings_and_numbers_only() {
        let s = [("db", r#"{"port":5432,"ratio":0.5,"hosts":["a"]}"#)];
        let out = render_str(
            "{{ secrets.db.port | urlencode }} {{ secrets.db.ratio | urlencode }}",
            &s,
        )
        .unwrap();
        assert_eq!(out, "5432 0.5");
        let e = render_str("{{ secrets.db.hosts | urlencode }}", &s).unwrap_err();
        assert_eq!(
            e,
            "line 1: urlencode needs a string in `{{ secrets.db.hosts | urlencode }}`"
        );
    }

    #[test]
    fn b64encode_takes_text_and_bytes() {
        let mut s = Secrets::default();
        s.insert("bin", &[0xff, 0x00, 0xfe]);
        s.insert("j", br#"{"n":1}"#);
        assert_eq!(
            render("{{ secrets.bin | b64encode }}", &s).unwrap(),
            b"/wD+"
        );
        let e = render("{{ secrets.j | b64encode }}", &s).unwrap_err();
        assert_eq!(
            e,
            "line 1: b64encode needs a string in `{{ secrets.j | b64encode }}`"
        );
    }

    #[test]
    fn engine_errors_give_their_kind_not_their_detail() {
        // minijinja's detail for these can quote operands; only the kind is kept.
        let e = render_str("{{ secrets.k + 1 }}", &[("k", CANARY)]).unwrap_err();
        assert_eq!(e, "line 1: invalid operation in `{{ secrets.k + 1 }}`");
    }

    #[test]
    fn a_render_over_its_budget_is_given_up_and_holds_back_renders_until_it_ends() {
        // ~10 ms per replace of 1 MB: about 1,000 s of CPU within the fuel.
        let slow = "{% set x = 'x' * 1000000 %}{% for i in range(100000) %}{% set y = x | replace('x', 'yy') %}{% endfor %}";
        let none = Arc::new(Secrets::default());
        let budget = Duration::from_millis(300);
        // (One test: the abandoned render below holds back this process's later renders.)
        let mut s = Secrets::default();
        s.insert("k", b"v");
        assert_eq!(
            render_within("{{ secrets.k }}", &Arc::new(s), budget).unwrap(),
            b"v"
        );
        // ~1 s: over the budget, abandoned, and once it ends renders run again.
        let late = "{% set x = 'x' * 1000000 %}{% for i in range(100) %}{% set y = x | replace('x', 'yy') %}{% endfor %}";
        let e = render_within(late, &none, budget).unwrap_err();
        assert!(e.starts_with("rendering took longer than 0.3 s"), "{e}");
        let recovered = (0..600).any(|_| {
            std::thread::sleep(Duration::from_millis(100));
            render_within("ok", &none, budget).is_ok()
        });
        assert!(
            recovered,
            "an abandoned render that ended still holds back renders"
        );
        let started = std::time::Instant::now();
        let e = render_within(slow, &none, budget).unwrap_err();
        assert!(e.starts_with("rendering took longer than 0.3 s"), "{e}");
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
        // The abandoned render still runs: the next one is refused at once.
        let e = render_within("ok", &none, budget).unwrap_err();
        assert!(e.contains("still running"), "{e}");
    }

    #[test]
    fn oversized_templates_are_refused() {
        let e = check(&"x".repeat(MAX_TEMPLATE_BYTES + 1)).unwrap_err();
        assert!(e.contains("the limit is 65536"), "{e}");
    }
}
