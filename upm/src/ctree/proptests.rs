//! Property tests: any input gives a tree or an error, never a panic; and any tree survives
//! `.ct` → `.toml` → `.ct` without loss.

use std::collections::BTreeMap;
use std::path::Path;

use proptest::prelude::*;

use super::{Entry, Key, Loc, Syntax, Tree, Value, parse_bytes, parse_str, resolve};

fn segment() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => prop::sample::select(vec!["a", "b", "c"]).prop_map(String::from),
        4 => "[a-z_][a-z0-9_-]{0,6}",
        1 => "[ -~]{1,5}",
        1 => "\\PC{1,4}",
    ]
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[ -~]{0,12}",
        2 => "[a-z\"\\\\\n\t$#;{}]{0,16}",
        1 => "\\PC{0,8}",
        1 => any::<String>(),
    ]
}

fn value() -> impl Strategy<Value = Value> {
    prop_oneof![
        3 => text().prop_map(Value::Str),
        1 => any::<i64>().prop_map(Value::Int),
        1 => any::<bool>().prop_map(Value::Bool),
        1 => prop::collection::vec(text(), 0..4).prop_map(Value::List),
    ]
}

fn tree() -> impl Strategy<Value = Tree> {
    prop::collection::vec((prop::collection::vec(segment(), 1..4), value()), 0..12).prop_map(
        |pairs| {
            let mut t = Tree::new();
            for (segs, value) in pairs {
                t.insert(Entry {
                    key: Key::new(segs),
                    value,
                    loc: Loc::none(),
                    literal: false,
                });
            }
            t
        },
    )
}

fn as_map(t: &Tree) -> BTreeMap<Key, Value> {
    t.entries()
        .iter()
        .map(|e| (e.key.clone(), e.value.clone()))
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        let _ = parse_bytes(&bytes, Syntax::Ct, Path::new("x.ct"));
        let _ = parse_bytes(&bytes, Syntax::Toml, Path::new("x.toml"));
    }

    #[test]
    fn ct_like_text_never_panics(s in "[a-z.=;\"#${}\\[\\], \n\\\\]{0,80}") {
        if let Ok(t) = parse_str(&s, Syntax::Ct, Path::new("x.ct")) {
            let _ = resolve::resolve(&t);
        }
        let _ = parse_str(&s, Syntax::Toml, Path::new("x.toml"));
    }

    #[test]
    fn ct_toml_ct_round_trip(t in tree()) {
        let ct = t.to_ct();
        let from_ct = parse_str(&ct, Syntax::Ct, Path::new("a.ct"))
            .map_err(|e| TestCaseError::fail(format!("{e}\n{ct}")))?;
        prop_assert_eq!(as_map(&from_ct), as_map(&t));
        let toml = from_ct.to_toml();
        let from_toml = parse_str(&toml, Syntax::Toml, Path::new("a.toml"))
            .map_err(|e| TestCaseError::fail(format!("{e}\n{toml}")))?;
        prop_assert_eq!(as_map(&from_toml), as_map(&t), "toml was:\n{}", toml);
        let back = parse_str(&from_toml.to_ct(), Syntax::Ct, Path::new("b.ct"))
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(as_map(&back), as_map(&t));
    }
}
