//! Scraped `/metrics` pages, parsed by the reference parser (the Python `prometheus_client`
//! package's OpenMetrics parser, installed by the setup script) so a page that Prometheus
//! would refuse fails the test.

use std::collections::BTreeMap;
use std::io::Write;
use std::process::{Command, Stdio};

/// One sample: metric name (with its `_total`, `_count`, `_bucket`... suffix), labels, value.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// The sample's name.
    pub name: String,
    /// Its labels.
    pub labels: BTreeMap<String, String>,
    /// Its value.
    pub value: f64,
}

const PARSE: &str = "
import json, sys
from prometheus_client.openmetrics.parser import text_string_to_metric_families
samples = []
for family in text_string_to_metric_families(sys.stdin.read()):
    for sample in family.samples:
        samples.append([sample.name, sample.labels, sample.value])
print(json.dumps(samples))
";

/// Parses an OpenMetrics page; panics with the parser's complaint when it is not valid.
pub fn parse(page: &str) -> Vec<Sample> {
    let python = crate::process::project_path(".venv/bin/python");
    let mut child = Command::new(&python)
        .args(["-c", PARSE])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|error| panic!("{} (run make setup): {error}", python.display()));
    child
        .stdin
        .take()
        .expect("stdin is piped")
        .write_all(page.as_bytes())
        .expect("the parser reads the page");
    let output = child.wait_with_output().expect("the parser runs");
    assert!(
        output.status.success(),
        "the page does not parse as OpenMetrics: {}\n{page}",
        String::from_utf8_lossy(&output.stderr)
    );
    let rows: Vec<(String, BTreeMap<String, String>, f64)> =
        serde_json::from_slice(&output.stdout).expect("the parser prints JSON");
    rows.into_iter()
        .map(|(name, labels, value)| Sample {
            name,
            labels,
            value,
        })
        .collect()
}

/// Sums the samples named `name` whose labels include every `(label, value)` in `matching`.
pub fn sum(samples: &[Sample], name: &str, matching: &[(&str, &str)]) -> f64 {
    samples
        .iter()
        .filter(|sample| sample.name == name)
        .filter(|sample| {
            matching
                .iter()
                .all(|(label, value)| sample.labels.get(*label).map(String::as_str) == Some(value))
        })
        .map(|sample| sample.value)
        .sum()
}

/// Returns the value of the unlabelled sample `name` (a gauge, or a counter's `_total`) on a
/// metrics page, read without the reference parser (for checks that run often).
pub fn value(page: &str, name: &str) -> Option<f64> {
    page.lines().find_map(|line| {
        let (sample, value) = line.split_once(' ')?;
        (sample == name).then(|| value.trim().parse().ok())?
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sample_is_read_by_its_exact_name() {
        let page = "# TYPE ktra_lag gauge\nktra_lag_seconds 2.5\nktra_lag 3\n# EOF\n";
        assert_eq!(value(page, "ktra_lag"), Some(3.0));
        assert_eq!(value(page, "ktra_lag_seconds"), Some(2.5));
        assert_eq!(value(page, "ktra_missing"), None);
    }
}
