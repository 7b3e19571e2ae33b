//! Input generators of the fuzz suites (`tests/fuzz.rs` of shared, webhook and
//! agent): strings built from each grammar's alphabet and tokens, sizes at and
//! around every limit, deep nesting, and plain hostile text. Plain std and
//! proptest only, so the webhook's and the agent's suites include this file too.
#![allow(dead_code)]

use std::collections::BTreeMap;

use proptest::prelude::*;
use proptest::sample::select;

/// Cases per target: `FUZZ_CASES` (the long run), else a bounded CI run.
pub fn cases() -> u32 {
    std::env::var("FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256)
}

/// Run `test` on `cases()` inputs of `strategy`; prints cases and wall time,
/// panics with the minimal failing input (no regression files are written).
pub fn fuzz<S: Strategy>(
    name: &str,
    strategy: S,
    test: impl Fn(S::Value) -> Result<(), TestCaseError>,
) where
    S::Value: std::fmt::Debug,
{
    let cases = cases();
    let config = ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    };
    let mut runner = proptest::test_runner::TestRunner::new(config);
    let start = std::time::Instant::now();
    // FUZZ_SLOW_MS=N: print every case slower than N ms, one still running
    // after 10 N ms, and a progress line every 100,000 cases (for the long
    // runs; the inputs hold no secret values).
    let slow = std::env::var("FUZZ_SLOW_MS")
        .ok()
        .and_then(|v| v.parse::<u128>().ok());
    let done = std::cell::Cell::new(0u64);
    // The case in progress, for a watchdog that names one that never ends.
    let current = std::sync::Arc::new(std::sync::Mutex::new((
        std::time::Instant::now(),
        String::new(),
    )));
    if let Some(limit) = slow {
        let current = std::sync::Arc::clone(&current);
        let name = name.to_string();
        std::thread::spawn(move || {
            let mut reported = String::new();
            loop {
                std::thread::sleep(std::time::Duration::from_secs(1));
                // The run has ended (its handle is gone): so does the watchdog.
                if std::sync::Arc::strong_count(&current) == 1 {
                    return;
                }
                let (since, input) = match current.lock() {
                    Ok(c) => (c.0, c.1.clone()),
                    Err(_) => return,
                };
                let ms = since.elapsed().as_millis();
                if ms > limit.saturating_mul(10) && input != reported {
                    eprintln!("fuzz {name}: still running after {ms} ms: {input}");
                    reported = input;
                }
            }
        });
    }
    let timed = |v: S::Value| {
        let Some(limit) = slow else {
            return test(v);
        };
        let shown = format!("{v:?}");
        let t = std::time::Instant::now();
        if let Ok(mut c) = current.lock() {
            *c = (t, shown.chars().take(2000).collect());
        }
        let result = test(v);
        let ms = t.elapsed().as_millis();
        if ms > limit {
            let head: String = shown.chars().take(2000).collect();
            eprintln!("fuzz {name}: slow case, {ms} ms: {head}");
        }
        done.set(done.get() + 1);
        if done.get().is_multiple_of(100_000) {
            eprintln!(
                "fuzz {name}: {} cases, {:.0} s",
                done.get(),
                start.elapsed().as_secs_f64()
            );
        }
        result
    };
    let result = runner.run(&strategy, timed);
    eprintln!(
        "fuzz {name}: {cases} cases, {:.1} s, {}",
        start.elapsed().as_secs_f64(),
        if result.is_ok() { "ok" } else { "FAILED" }
    );
    if let Err(e) = result {
        panic!("fuzz target {name} failed: {e}");
    }
}

/// Counts of what the inputs reached (printed with the run, to show depth).
#[derive(Debug, Default)]
pub struct Tally(std::cell::RefCell<BTreeMap<&'static str, u64>>);

impl Tally {
    pub fn add(&self, what: &'static str) {
        *self.0.borrow_mut().entry(what).or_default() += 1;
    }

    pub fn print(&self, name: &str) {
        eprintln!("fuzz {name} reached: {:?}", self.0.borrow());
    }
}

/// Strings of 0..=`max` characters drawn from `alphabet`.
pub fn from_alphabet(alphabet: &'static str, max: usize) -> impl Strategy<Value = String> + Clone {
    let chars: Vec<char> = alphabet.chars().collect();
    prop::collection::vec(select(chars), 0..=max).prop_map(|v| v.into_iter().collect())
}

/// `unit` repeated to about `len` bytes, for inputs at and around a size limit.
pub fn repeated(unit: &'static str, len: usize) -> String {
    unit.repeat(len / unit.len().max(1) + 1)
        .chars()
        .take(len)
        .collect()
}

/// Lengths at and around each limit (`l - 1`, `l`, `l + 1`).
pub fn near(limits: &'static [usize]) -> impl Strategy<Value = usize> + Clone {
    (select(limits), 0usize..3).prop_map(|(l, d)| (l + d).saturating_sub(1))
}

/// Any Unicode text, NUL and control characters included.
pub fn hostile() -> impl Strategy<Value = String> + Clone {
    prop_oneof![
        any::<String>(),
        from_alphabet(
            "\0\t\n\r \u{7f}\u{85}\u{a0}\u{2028}\u{feff}é😀\\\"'`${}[]()*?!|&=,:;/.-_",
            32
        ),
    ]
}

/// `s`, sometimes with surrounding whitespace (annotation values are trimmed).
pub fn padded(s: impl Strategy<Value = String> + Clone) -> impl Strategy<Value = String> + Clone {
    (
        select(vec!["", "", "", " ", "\t", "\n "]),
        s,
        select(vec!["", "", "", " ", "\n"]),
    )
        .prop_map(|(a, s, b)| format!("{a}{s}{b}"))
}

// ---------------------------------------------------------------- durations

/// Scales of the duration units, in nanoseconds.
pub const UNITS: &[(&str, u128)] = &[
    ("ns", 1),
    ("us", 1_000),
    ("µs", 1_000),
    ("ms", 1_000_000),
    ("s", 1_000_000_000),
    ("m", 60_000_000_000),
    ("h", 3_600_000_000_000),
];

/// One duration component: integer digits, optional fraction digits, unit text.
#[derive(Debug, Clone)]
pub struct Component {
    pub int: String,
    pub frac: Option<String>,
    pub unit: String,
}

impl Component {
    pub fn text(&self) -> String {
        match &self.frac {
            Some(f) => format!("{}.{f}{}", self.int, self.unit),
            None => format!("{}{}", self.int, self.unit),
        }
    }
}

fn digits(max: usize) -> impl Strategy<Value = String> + Clone {
    from_alphabet("0123456789", max)
}

/// Distance below an edge: right at it most often.
fn edge() -> impl Strategy<Value = u128> + Clone {
    prop_oneof![0u128..3, 0u128..2_000]
}

/// Integer parts: small, u64-sized, and at the u128 overflow edge of every unit.
fn duration_int() -> impl Strategy<Value = String> + Clone {
    prop_oneof![
        (0u64..100_000).prop_map(|n| n.to_string()),
        any::<u64>().prop_map(|n| n.to_string()),
        any::<u128>().prop_map(|n| n.to_string()),
        (select(UNITS), edge()).prop_map(|((_, scale), k)| (u128::MAX / scale - k).to_string()),
        (select(UNITS), edge())
            .prop_map(
                |((_, scale), k)| (u128::from(u64::MAX) * 1_000_000_000 / scale - k).to_string()
            ),
        digits(45),
    ]
}

/// Structured duration components (any unit text, valid ones most often).
pub fn duration_components() -> impl Strategy<Value = Vec<Component>> + Clone {
    let unit = prop_oneof![
        4 => select(UNITS).prop_map(|(u, _)| u.to_string()),
        1 => select(vec!["", "d", "S", "μs", "mh", "sec", " s", "h x"]).prop_map(String::from),
    ];
    let frac = prop_oneof![3 => Just(None), 1 => digits(25).prop_map(Some)];
    prop::collection::vec(
        (duration_int(), frac, unit).prop_map(|(int, frac, unit)| Component { int, frac, unit }),
        1..4,
    )
}

/// Duration annotation values: structured, signed, and alphabet soup.
pub fn duration() -> impl Strategy<Value = String> + Clone {
    prop_oneof![
        4 => duration_components().prop_map(|c| c.iter().map(Component::text).collect()),
        1 => (select(vec!["-", "+", ".", "..", " "]), duration_components())
            .prop_map(|(p, c)| format!("{p}{}", c.iter().map(Component::text).collect::<String>())),
        2 => from_alphabet("0123456789.nsuµmh +-", 40),
        1 => hostile(),
    ]
}

// ---------------------------------------------------------------- refs

const SM_ALPHABET: &str = "abcdefXYZ0189/_+=.@-";
const SSM_SEGMENT: &str = "abcXYZ019_.-";

fn ssm_name() -> impl Strategy<Value = String> + Clone {
    prop_oneof![
        (
            select(vec!["/", "", "//"]),
            prop::collection::vec(from_alphabet(SSM_SEGMENT, 8), 1..5)
        )
            .prop_map(|(lead, segs)| format!("{lead}{}", segs.join("/"))),
        near(&[2048]).prop_map(|n| format!("/{}", repeated("ab/c", n - 1))),
        from_alphabet("abc/_.-:*", 16),
    ]
}

fn region() -> impl Strategy<Value = String> + Clone {
    prop_oneof![
        select(vec![
            "us-east-1",
            "eu-west-1",
            "cn-north-1",
            "us-gov-west-1",
            "eu-isoe-west-1",
            "",
            "us-east",
            "US-EAST-1",
            "us--1",
            "us-east-99999",
            "us-east-x",
        ])
        .prop_map(String::from),
        from_alphabet("abcz-019", 14),
    ]
}

fn arn() -> impl Strategy<Value = String> + Clone {
    let partition = select(vec![
        "aws",
        "aws-cn",
        "aws-us-gov",
        "aws-",
        "azure",
        "",
        "aws-iso-b",
    ]);
    let service = select(vec!["secretsmanager", "ssm", "s3", "iam", ""]);
    let account = prop_oneof![
        Just("123456789012".to_string()),
        digits(13),
        from_alphabet("0123456789a", 12)
    ];
    let resource = prop_oneof![
        from_alphabet(SM_ALPHABET, 24).prop_map(|n| format!("secret:{n}")),
        ssm_name().prop_map(|n| format!("parameter{n}")),
        select(vec![
            "secret:",
            "parameter",
            "parameter/",
            "key:x",
            "secret:a:b"
        ])
        .prop_map(String::from),
        near(&[512]).prop_map(|n| format!("secret:{}", repeated("a", n))),
    ];
    (partition, service, region(), account, resource)
        .prop_map(|(p, s, r, a, res)| format!("arn:{p}:{s}:{r}:{a}:{res}"))
}

/// Single-secret references: Secrets Manager names, `ssm:` names, ARNs.
pub fn secret_ref() -> impl Strategy<Value = String> + Clone {
    padded(prop_oneof![
        3 => from_alphabet(SM_ALPHABET, 40),
        1 => near(&[512]).prop_map(|n| repeated("ab/", n)),
        3 => ssm_name().prop_map(|n| format!("ssm:{n}")),
        3 => arn(),
        1 => from_alphabet("arn:sm/ssm_*,=tag aws", 30),
        1 => hostile(),
    ])
}

/// Selectors: prefixes, SSM paths and tag lists, valid and not.
pub fn selector() -> impl Strategy<Value = String> + Clone {
    let tag_part = prop_oneof![
        from_alphabet("abcXYZ019 _.:/=+-@é!", 12),
        near(&[128, 256]).prop_map(|n| repeated("k", n)),
    ];
    let tags = prop::collection::vec((tag_part.clone(), tag_part), 0..12).prop_map(|pairs| {
        let pairs: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}={v}")).collect();
        format!("tag:{}", pairs.join(","))
    });
    padded(prop_oneof![
        from_alphabet(SM_ALPHABET, 24).prop_map(|p| format!("{p}*")),
        ssm_name().prop_map(|p| format!("ssm:{p}/*")),
        tags,
        from_alphabet("ab/*:ssmtag=,", 20),
    ])
}

// ---------------------------------------------------------------- objects YAML

/// Object names with a matching `objectType`.
const VALID_OBJECTS: &[(&str, &str)] = &[
    ("prod/db", "secretsmanager"),
    ("/app/key", "ssmparameter"),
    ("MyParam", "ssmparameter"),
    (
        "arn:aws:secretsmanager:us-east-1:123456789012:secret:prod/db-AbCdEf",
        "secretsmanager",
    ),
    (
        "arn:aws:ssm:eu-west-1:123456789012:parameter/app/key",
        "ssmparameter",
    ),
];

const JMES_IDENTS: &[&str] = &["a", "b", "user", "password", "db", "x1", "_z"];
const JMES_TOKENS: &[&str] = &[
    "a",
    "b",
    "user",
    "\"quoted id\"",
    "'raw'",
    "`1`",
    "`\"lit\"`",
    "`{\"a\":[1]}`",
    "0",
    "-1",
    ".",
    "[",
    "]",
    "[?",
    "[*]",
    "[]",
    "*",
    "|",
    "||",
    "&&",
    "!",
    "&",
    "==",
    "!=",
    "<",
    "<=",
    ">",
    ">=",
    "(",
    ")",
    "{",
    "}",
    ",",
    ":",
    "@",
    "length(",
    "keys(",
    "sort_by(",
    "max_by(",
    "to_string(",
    "join(",
    "contains(",
    "[0]",
    "[-1]",
    "[::-1]",
    "[1:2:0]",
    " ",
    "\\",
    "\"",
    "'",
    "`",
];

/// JMESPath expressions: token soup, valid structured expressions, one token
/// repeated up to (and past) the 1 KiB limit, and bracket nesting around 16.
pub fn jmes_path() -> impl Strategy<Value = String> + Clone {
    let leaf = select(JMES_IDENTS).prop_map(String::from);
    let structured = leaf.prop_recursive(6, 48, 4, |inner| {
        prop_oneof![
            (inner.clone(), select(JMES_IDENTS)).prop_map(|(a, b)| format!("{a}.{b}")),
            (inner.clone(), -3i32..4).prop_map(|(a, i)| format!("{a}[{i}]")),
            inner.clone().prop_map(|a| format!("{a}[*]")),
            inner.clone().prop_map(|a| format!("{a}[]")),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("{a}[?{b} == `\"x\"`]")),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("{a} | {b}")),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("{a} || {b}")),
            inner.clone().prop_map(|a| format!("!{a}")),
            inner.clone().prop_map(|a| format!("length({a})")),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("{{k: {a}, v: {b}}}")),
            inner.clone().prop_map(|a| format!("sort_by({a}, &user)")),
        ]
    });
    let soup = prop::collection::vec(select(JMES_TOKENS), 0..60).prop_map(|t| t.concat());
    let run = (
        select(JMES_TOKENS),
        near(&[16, 64, 256, 512, 1024]),
        select(JMES_IDENTS),
    )
        .prop_map(|(tok, n, tail)| format!("{}{tail}", tok.repeat(n / tok.len().max(1))));
    let nested = (
        select(vec![
            ("[", "]"),
            ("(", ")"),
            ("{a: ", "}"),
            ("[?", "]"),
            ("a[?", "]"),
        ]),
        near(&[16, 17]),
    )
        .prop_map(|((open, close), n)| format!("{}a{}", open.repeat(n), close.repeat(n)));
    prop_oneof![
        3 => structured,
        3 => soup,
        2 => run,
        1 => nested,
        1 => hostile(),
    ]
}

fn yaml_scalar() -> impl Strategy<Value = String> + Clone {
    prop_oneof![
        secret_ref(),
        select(vec![
            "secretsmanager",
            "ssmparameter",
            "SecretsManager",
            "0440",
            "0o777",
            "07777",
            "true",
            "~",
            "null",
            "[]",
            "{}",
            "'",
            "\"",
            "- x",
            "&a x",
            "*a",
            "!!binary aGk=",
            "|\n  x",
            "raw",
            "dotenv",
            "files",
            "none",
            "AWSCURRENT",
            "3",
        ])
        .prop_map(String::from),
        from_alphabet("abc/.:-_ #&*!|>'\"{}[],%@`\n", 16),
        jmes_path(),
        hostile(),
    ]
}

const OBJECT_FIELDS: &[&str] = &[
    "objectName",
    "objectType",
    "objectAlias",
    "objectVersion",
    "objectVersionLabel",
    "filePermission",
    "optional",
    "format",
    "jmesPath",
    "failoverObject",
    "unknownField",
];

fn yaml_quote(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_default()
}

/// One ASCP object as YAML (block or flow style; values raw or quoted).
fn yaml_object() -> impl Strategy<Value = String> + Clone {
    let jmes = prop::collection::vec((jmes_path(), yaml_scalar()), 0..3).prop_map(|v| {
        let items: Vec<String> = v
            .iter()
            .map(|(p, a)| {
                format!(
                    "{{path: {}, objectAlias: {}}}",
                    yaml_quote(p),
                    yaml_quote(a)
                )
            })
            .collect();
        format!("[{}]", items.join(", "))
    });
    let field = (select(OBJECT_FIELDS), yaml_scalar(), any::<bool>(), jmes).prop_map(
        |(k, v, quote, jmes)| match k {
            "jmesPath" => (k.to_string(), jmes),
            "failoverObject" => (k.to_string(), format!("{{objectName: {}}}", yaml_quote(&v))),
            _ if quote => (k.to_string(), yaml_quote(&v)),
            _ => (k.to_string(), v),
        },
    );
    (prop::collection::vec(field, 0..6), any::<bool>()).prop_map(|(fields, flow)| {
        if flow {
            let kv: Vec<String> = fields.iter().map(|(k, v)| format!("{k}: {v}")).collect();
            format!("- {{{}}}\n", kv.join(", "))
        } else {
            let mut s = String::from("-");
            for (i, (k, v)) in fields.iter().enumerate() {
                let v = v.replace('\n', "\n    ");
                s.push_str(&format!("{}{k}: {v}\n", if i == 0 { " " } else { "  " }));
            }
            if fields.is_empty() {
                s.push_str(" {}\n");
            }
            s
        }
    })
}

/// A well-formed object most of the time (so conversion and checks run).
fn good_object() -> impl Strategy<Value = String> + Clone {
    let source = prop_oneof![
        3 => select(VALID_OBJECTS).prop_map(|(n, t)| (n.to_string(), t)),
        1 => (secret_ref(), select(vec!["secretsmanager", "ssmparameter"])),
    ];
    (
        source,
        from_alphabet("abc/._-", 12),
        prop::collection::vec((jmes_path(), from_alphabet("abc/._-", 10)), 0..3),
        select(vec![
            "",
            "  format: json\n",
            "  filePermission: 0440\n",
            "  optional: true\n",
        ]),
    )
        .prop_map(|((name, ty), alias, jmes, extra)| {
            let mut s = format!(
                "- objectName: {}\n  objectType: {ty}\n  objectAlias: {}\n{extra}",
                yaml_quote(&name),
                yaml_quote(&alias)
            );
            if !jmes.is_empty() {
                s.push_str("  jmesPath:\n");
                for (p, a) in jmes {
                    s.push_str(&format!(
                        "    - path: {}\n      objectAlias: {}\n",
                        yaml_quote(&p),
                        yaml_quote(&a)
                    ));
                }
            }
            s
        })
}

/// `objects` annotation values: object lists, YAML soup, deep flow nesting,
/// alias bombs and sizes around the 64 KiB limit.
pub fn objects_yaml() -> impl Strategy<Value = String> + Clone {
    let list = prop::collection::vec(prop_oneof![good_object(), yaml_object()], 0..6)
        .prop_map(|v| v.concat());
    let soup = from_alphabet("- :{}[],'\"\n #&*!|>%@`?abc0123objectNameType", 200);
    let deep = (
        select(vec![("[", "]"), ("{a: ", "}"), ("- ", "")]),
        near(&[16, 17, 200]),
    )
        .prop_map(|((o, c), n)| format!("{}x{}", o.repeat(n), c.repeat(n)));
    let bomb = (2usize..12).prop_map(|n| {
        let mut s = String::from("- objectName: x\n  objectType: secretsmanager\n  jmesPath: &a0 [{path: a, objectAlias: b}]\n");
        for i in 1..n {
            let refs = vec![format!("*a{}", i - 1); 9].join(", ");
            s.push_str(&format!("- {{objectName: y{i}, objectType: ssmparameter, jmesPath: &a{i} [{refs}]}}\n"));
        }
        s
    });
    let sized = (near(&[64 * 1024]), good_object()).prop_map(|(n, o)| {
        let mut s = o;
        s.push_str("# ");
        let pad = n.saturating_sub(s.len() + 1);
        s.push_str(&"x".repeat(pad));
        s.push('\n');
        s
    });
    prop_oneof![
        6 => list,
        2 => soup,
        1 => deep,
        1 => bomb,
        1 => sized,
        1 => hostile(),
    ]
}

// ---------------------------------------------------------------- templates

const TEMPLATE_EXPRS: &[&str] = &[
    "secrets.db",
    "secrets.db.user",
    "secrets[\"db\"].password",
    "secrets.key",
    "secrets.bin",
    "secrets.dir",
    "secrets.dir[\"api-key\"]",
    "secrets.nope",
    "secrets",
    "x",
    "loop.index",
    "'lit'",
    "\"q\"",
    "1",
    "-1",
    "2.5",
    "none",
    "true",
    "[1, 2]",
    "{'a': 1}",
    "range(3)",
    "range(100000)",
    "range(100001)",
    "'ab' * 3",
    "'x' * 1048576",
    "'x' * 1048577",
    "'x' * 100000001",
    "[1] * 100",
    "secrets.db | items",
    "secrets.db | tojson",
    "secrets.key | b64encode",
    "secrets.key | b64decode",
    "secrets.key | urlencode",
    "secrets.key | upper",
    "secrets.key | length",
    "secrets.db.user | default('d')",
    "secrets.key | int",
    "secrets.key ~ 'x'",
    "secrets.key[0:2]",
    "secrets.key()",
    "1 / 0",
    "1 // 0",
    "2 ** 64",
    "9223372036854775807 + 1",
    "x is defined",
    "secrets.db is mapping",
];
const TEMPLATE_FILTERS: &[&str] = &[
    "upper",
    "lower",
    "trim",
    "b64encode",
    "b64decode",
    "urlencode",
    "tojson",
    "length",
    "default('d')",
    "join(',')",
    "items",
    "list",
    "first",
    "last",
    "int",
    "float",
    "string",
    "replace('a', 'bb')",
    "safe",
    "escape",
    "attr('x')",
    "indent(2)",
    "sort",
    "unique",
];
const TEMPLATE_SOUP: &[&str] = &[
    "{{",
    "}}",
    "{%",
    "%}",
    "{#",
    "#}",
    "{%-",
    "-%}",
    " if ",
    " for ",
    " in ",
    " endfor ",
    " endif ",
    " set ",
    "=",
    "|",
    "(",
    ")",
    "[",
    "]",
    ".",
    "secrets",
    "db",
    "'",
    "\"",
    "\n",
    " include ",
    " import ",
    " extends ",
    " macro ",
    " block ",
    " raw ",
    " endraw ",
    "~",
    "*",
    " filter ",
    " endfilter ",
    " with ",
    " endwith ",
    " call ",
    "loop",
    ",",
    ":",
    "x",
];

/// Leaves that build a large value (a MiB string, a 100,000-item list): fine
/// once (the output cap and minijinja's limits answer them), but in a loop
/// body each of up to [`FUEL`](secrets_injector_shared::template::FUEL)
/// turns may copy or stringify it, so one case takes minutes (seen:
/// `range(100000) | upper` in two nested loops, 175 s). The render time
/// budget, tested on its own in `template.rs` and the agent, is what bounds
/// those; here loop bodies and `set` values are drawn without them.
const BIG_VALUE_EXPRS: &[&str] = &[
    "'x' * 1048576",
    "'x' * 1048577",
    "'x' * 100000001",
    "range(100000)",
    "range(100001)",
];

fn template_expr() -> impl Strategy<Value = String> + Clone {
    expr_of(TEMPLATE_EXPRS.to_vec())
}

/// Expressions for a loop's body or a `set`: no large values (see [`BIG_VALUE_EXPRS`]).
fn loop_body_expr() -> impl Strategy<Value = String> + Clone {
    let small = TEMPLATE_EXPRS
        .iter()
        .copied()
        .filter(|e| !BIG_VALUE_EXPRS.contains(e))
        .collect();
    expr_of(small)
}

fn expr_of(leaves: Vec<&'static str>) -> impl Strategy<Value = String> + Clone {
    let leaf = select(leaves).prop_map(String::from);
    leaf.prop_recursive(4, 24, 3, |inner| {
        prop_oneof![
            (inner.clone(), select(TEMPLATE_FILTERS)).prop_map(|(e, f)| format!("{e} | {f}")),
            (
                inner.clone(),
                select(vec!["~", "+", "*", "-", "==", "and", "or", "in"]),
                inner.clone()
            )
                .prop_map(|(a, op, b)| format!("({a} {op} {b})")),
            (inner.clone(), inner.clone(), inner.clone())
                .prop_map(|(a, b, c)| format!("({a} if {b} else {c})")),
            inner.clone().prop_map(|e| format!("not {e}")),
            inner.clone().prop_map(|e| format!("{e}.user")),
            (inner.clone(), inner).prop_map(|(a, b)| format!("{a}[{b}]")),
        ]
    })
}

/// minijinja sources: statements from the grammar, token soup, deep nesting,
/// and sizes around the 64 KiB limit.
pub fn template() -> impl Strategy<Value = String> + Clone {
    let text = from_alphabet("abc =:/@\n{}%#", 12);
    let piece = prop_oneof![
        3 => text,
        3 => template_expr().prop_map(|e| format!("{{{{ {e} }}}}")),
        1 => (template_expr(), template_expr())
            .prop_map(|(c, e)| format!("{{% if {c} %}}{{{{ {e} }}}}{{% else %}}x{{% endif %}}")),
        1 => (template_expr(), loop_body_expr())
            .prop_map(|(it, e)| format!("{{% for x in {it} %}}{{{{ {e} }}}}{{% endfor %}}")),
        1 => loop_body_expr().prop_map(|e| format!("{{% set x = {e} %}}{{{{ x }}}}")),
        1 => Just("{% for k, v in secrets.db | items %}{{ k }}={{ v }}\n{% endfor %}".to_string()),
        1 => Just("{% raw %}{{ not parsed }}{% endraw %}{# comment #}".to_string()),
    ];
    let grammar = prop::collection::vec(piece, 0..8).prop_map(|v| v.concat());
    let soup = prop::collection::vec(select(TEMPLATE_SOUP), 0..40).prop_map(|v| v.concat());
    let deep = (
        select(vec![
            ("{{ ", "x", " }}", "(", ")"),
            ("{{ ", "1", " }}", "[", "]"),
            ("", "x", "", "{% if true %}", "{% endif %}"),
            ("", "{{ x }}", "", "{% for x in [1] %}", "{% endfor %}"),
        ]),
        near(&[100, 150, 500]),
    )
        .prop_map(|((pre, mid, post, open, close), n)| {
            format!("{pre}{}{mid}{}{post}", open.repeat(n), close.repeat(n))
        });
    let loops = (
        1u32..4,
        select(vec![10u32, 1000, 100_000]),
        loop_body_expr(),
    )
        .prop_map(|(d, n, e)| {
            let open = format!("{{% for i in range({n}) %}}").repeat(d as usize);
            format!("{open}{{{{ {e} }}}}{}", "{% endfor %}".repeat(d as usize))
        });
    let sized = near(&[64 * 1024]).prop_map(|n| repeated("{{ secrets.key }}", n));
    prop_oneof![
        6 => grammar,
        2 => soup,
        1 => deep,
        1 => loops,
        1 => sized,
        1 => hostile(),
    ]
}

// ---------------------------------------------------------------- annotations

pub const DOMAIN: &str = "secrets-injector.io/";

fn file_name() -> impl Strategy<Value = String> + Clone {
    prop_oneof![
        6 => from_alphabet("abcdb.json_-", 10).prop_map(|s| format!("f{s}")),
        1 => from_alphabet("ab/._\0é ", 10),
        1 => select(vec!["..", ".", "..data", "a/b", "/abs", "", "db", "a//b", "orders"]).prop_map(String::from),
        1 => near(&[255, 1024]).prop_map(|n| repeated("f", n)),
    ]
}

fn env_name() -> impl Strategy<Value = String> + Clone {
    prop_oneof![
        from_alphabet("ABC_019", 8),
        select(vec!["from", "1X", "a-b", "", "DB_PASSWORD", "PATH"]).prop_map(String::from),
    ]
}

/// One annotation: a key of every kind the contract knows (and some it does
/// not) with a value from that key's grammar, or any value.
pub fn annotation() -> impl Strategy<Value = (String, String)> + Clone {
    let k = |s: &str| format!("{DOMAIN}{s}");
    let simple = |key: &'static str, values: Vec<&'static str>| {
        (
            Just(format!("{DOMAIN}{key}")),
            padded(prop_oneof![
                3 => select(values).prop_map(String::from),
                1 => hostile(),
            ]),
        )
    };
    prop_oneof![
        8 => (file_name(), prop_oneof![4 => secret_ref(), 1 => selector()])
            .prop_map(|(f, v)| (format!("{DOMAIN}secret-{f}"), v)),
        2 => (file_name(), select(vec!["raw", "dotenv", "json", "yaml", "properties", "files", "none", "toml", ""]))
            .prop_map(|(f, v)| (format!("{DOMAIN}format-{f}"), v.to_string())),
        2 => (file_name(), template()).prop_map(|(f, v)| (format!("{DOMAIN}template-{f}"), v)),
        2 => (env_name(), file_name()).prop_map(|(n, f)| (format!("{DOMAIN}env-{n}"), f)),
        1 => prop::collection::vec(file_name(), 0..3).prop_map(move |d| (format!("{DOMAIN}env-from"), d.join(","))),
        3 => objects_yaml().prop_map(move |v| (format!("{DOMAIN}objects"), v)),
        2 => duration().prop_map(move |v| (format!("{DOMAIN}refresh-interval"), v)),
        2 => duration().prop_map(move |v| (format!("{DOMAIN}startup-timeout"), v)),
        1 => simple("mode", vec!["init", "sidecar", "daemon", ""]),
        1 => simple("mount-path", vec!["/mnt/secrets", "/var/run/x/", "relative", "/", "//", "/a/../b", "/a/..x"]),
        1 => simple("containers", vec!["app", "app,worker", "App", ",", "secrets-injector-agent", "x,,y"]),
        1 => region().prop_map(move |v| (format!("{DOMAIN}region"), v)),
        1 => region().prop_map(move |v| (format!("{DOMAIN}failover-region"), v)),
        1 => simple("role-arn", vec!["arn:aws:iam::123456789012:role/reader", "arn:aws:iam::123:role/x", "reader", "arn:aws:iam::123456789012:role/"]),
        1 => simple("file-permission", vec!["0440", "440", "0o400", "999", "0", "04777", "7777", "0o", "-1"]),
        1 => simple("on-change", vec!["signal:SIGHUP:nginx", "signal:HUP:app", "signal:KILL:x", "signal:HUP:", "signal:HUP:0123456789abcdef", "http:http://localhost:8080/-/reload", "http:http://[::1]:0/", "http:http://example.com/", "http:http://[::1", "exec:/bin/true"]),
        1 => simple("agent-cpu", vec!["50m", "0.5", "1e3", "+1", "-1", "lots", ".", "1.2.3", "99999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999E"]),
        1 => simple("agent-memory", vec!["32Mi", "1Gi", "64Ki", "1e-3", "0", "1E3", "Mi"]),
        1 => simple("allow-node-role", vec!["true", "false", "maybe"]),
        1 => simple("inject", vec!["true", "enabled", "false", "disabled", "sometimes"]),
        1 => simple("status", vec!["injected", ""]),
        1 => simple("config-hash", vec!["abc", ""]),
        1 => (prop_oneof![
            from_alphabet("abcdefghijklmnopqrstuvwxyz-", 16).prop_map(move |s| k(&s)),
            Just("secrets-injector.iox/y".to_string()),
            Just("vault.hashicorp.com/agent-inject".to_string()),
            hostile().prop_map(move |s| format!("{DOMAIN}{s}")),
        ], hostile()),
    ]
}

/// Annotations a real pod would carry (so admission gets past the checks),
/// with now and then one from [`annotation`] mixed in.
pub fn valid_annotations() -> impl Strategy<Value = BTreeMap<String, String>> + Clone {
    let refs = vec![
        "prod/db",
        "ssm:/app/key",
        "ssm:MyParam",
        "prod/orders/*",
        "ssm:/prod/orders/*",
        "tag:team=orders,env=prod",
        "arn:aws:secretsmanager:us-east-1:123456789012:secret:prod/db-AbCdEf",
        "arn:aws:ssm:eu-west-1:123456789012:parameter/app/key",
    ];
    let optional: Vec<(&str, &str)> = vec![
        ("format-f0", "json"),
        ("format-f0", "dotenv"),
        ("format-f0", "files"),
        ("format-f1", "yaml"),
        ("format-f1", "properties"),
        ("mode", "sidecar"),
        ("mode", "init"),
        ("refresh-interval", "5m"),
        ("refresh-interval", "1h30m"),
        ("startup-timeout", "2m"),
        ("mount-path", "/var/run/app/"),
        ("region", "eu-west-1"),
        ("failover-region", "eu-central-1"),
        ("role-arn", "arn:aws:iam::123456789012:role/r"),
        ("file-permission", "0440"),
        ("template-t", "{{ secrets.f0 }}"),
        (
            "template-u",
            "{% for k, v in secrets.f0 | items %}{{ k }}={{ v }}\n{% endfor %}",
        ),
        ("env-DB", "f0"),
        ("env-T", "t"),
        ("agent-cpu", "50m"),
        ("agent-memory", "64Mi"),
        ("containers", "app"),
        ("allow-node-role", "true"),
        ("inject", "true"),
        (
            "objects",
            "- {objectName: prod/x, objectType: secretsmanager, objectAlias: x, jmesPath: [{path: user, objectAlias: x-user}]}",
        ),
    ];
    (
        prop::collection::vec(select(refs), 1..5),
        prop::sample::subsequence(optional.clone(), 0..=optional.len()),
        prop::collection::vec(annotation(), 0..2),
        0u8..4,
    )
        .prop_map(|(refs, optional, extra, mix)| {
            let mut m: BTreeMap<String, String> = refs
                .iter()
                .enumerate()
                .map(|(i, r)| (format!("{DOMAIN}secret-f{i}"), (*r).to_string()))
                .collect();
            for (k, v) in optional {
                m.insert(format!("{DOMAIN}{k}"), v.to_string());
            }
            if mix == 0 {
                m.extend(extra);
            }
            m
        })
}

/// A pod's annotation map: a few keys of any kind, valid sets, and sometimes
/// floods of one kind past its count limit.
pub fn annotations() -> impl Strategy<Value = BTreeMap<String, String>> + Clone {
    let normal = prop::collection::vec(annotation(), 0..12).prop_map(|v| v.into_iter().collect());
    let flood = (
        select(vec!["secret-f", "env-E", "template-t", "secret-s"]),
        near(&[20, 100, 500]),
        prop::collection::vec(annotation(), 0..4),
    )
        .prop_map(|(kind, n, extra)| {
            let mut m: BTreeMap<String, String> = extra.into_iter().collect();
            for i in 0..n {
                let value = match kind {
                    "secret-f" => format!("prod/s{i}"),
                    "secret-s" => format!("prod/sel{i}/*"),
                    "env-E" => "f0".to_string(),
                    _ => "{{ secrets.f0 }}".to_string(),
                };
                m.insert(format!("{DOMAIN}{kind}{i}"), value);
            }
            m
        });
    prop_oneof![4 => normal, 4 => valid_annotations(), 1 => flood]
}

// ---------------------------------------------------------------- JSON

/// JSON of any shape and depth (to 6 levels), object keys from `keys` or any text.
pub fn any_json(keys: &'static [&'static str]) -> impl Strategy<Value = serde_json::Value> + Clone {
    use serde_json::Value;
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        hostile().prop_map(Value::String),
        select(keys).prop_map(|s| Value::String(s.into())),
    ];
    let key = prop_oneof![4 => select(keys).prop_map(String::from), 1 => hostile()];
    leaf.prop_recursive(6, 64, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(key.clone(), inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}
