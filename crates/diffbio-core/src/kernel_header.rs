//! Reads the numeric `#define`s of a CUDA header, so that tests can check the kernels'
//! copy of an op's contract against the Rust one.

use std::collections::BTreeMap;

/// `NAME → value` for every `#define NAME <number>` line (other lines are skipped).
pub(crate) fn defines(header: &str) -> BTreeMap<String, f64> {
    header
        .lines()
        .filter_map(|line| {
            let mut words = line.trim().strip_prefix("#define")?.split_whitespace();
            let (name, value) = (words.next()?, words.next()?);
            Some((name.to_string(), value.parse().ok()?))
        })
        .collect()
}

/// Asserts that `header` defines exactly the `expected` names, with those values.
pub(crate) fn assert_defines(file: &str, header: &str, expected: &[(&str, f64)]) {
    let found = defines(header);
    for &(name, value) in expected {
        assert_eq!(found.get(name), Some(&value), "{name} in {file}");
    }
    assert_eq!(
        found.len(),
        expected.len(),
        "every define of {file} is checked: {found:?}"
    );
}

#[test]
fn defines_are_read_and_other_lines_skipped() {
    let header = "#pragma once\n#define A 3\n  #define B 1e-8 // note\n#define C (1 + 2)\nint x;";
    let got = defines(header);
    assert_eq!(got.len(), 2);
    assert_eq!(got["A"], 3.0);
    assert_eq!(got["B"], 1e-8);
}
