//! The benchmark scenarios of `make bench`.

use std::time::Duration;

use serde::Serialize;

mod publishing;
mod serving;

pub(crate) use publishing::{
    Label, growth, publish, publish_bodies, publish_load, record_publish, visible,
};
pub(crate) use serving::{downloads, pages, peer_downloads, reads};

/// One measured figure, over several runs.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Figure {
    /// The scenario.
    pub(crate) scenario: String,
    /// The configuration.
    pub(crate) configuration: String,
    /// What varies within the scenario (clients, file, protocol...).
    pub(crate) variant: String,
    /// What is measured.
    pub(crate) metric: String,
    /// The unit.
    pub(crate) unit: String,
    /// One value per run.
    pub(crate) runs: Vec<f64>,
}

impl Figure {
    /// The median of the runs.
    pub(crate) fn median(&self) -> f64 {
        crate::stats::percentile(&self.runs, 50.0)
    }
}

/// Collects figures across runs: the same (scenario, variant, metric) accumulates values.
#[derive(Debug, Default)]
pub(crate) struct Figures {
    configuration: String,
    figures: Vec<Figure>,
}

impl Figures {
    /// Figures of one configuration.
    pub(crate) fn new(configuration: &str) -> Self {
        Self {
            configuration: configuration.to_owned(),
            figures: Vec::new(),
        }
    }

    /// Records one value.
    pub(crate) fn record(
        &mut self,
        scenario: &str,
        variant: &str,
        metric: &str,
        unit: &str,
        value: f64,
    ) {
        if let Some(figure) = self.figures.iter_mut().find(|figure| {
            figure.scenario == scenario && figure.variant == variant && figure.metric == metric
        }) {
            figure.runs.push(value);
            return;
        }
        self.figures.push(Figure {
            scenario: scenario.to_owned(),
            configuration: self.configuration.clone(),
            variant: variant.to_owned(),
            metric: metric.to_owned(),
            unit: unit.to_owned(),
            runs: vec![value],
        });
    }

    /// The figures.
    pub(crate) fn into_inner(self) -> Vec<Figure> {
        self.figures
    }
}

/// How big and long the scenarios are.
#[derive(Debug, Clone)]
pub(crate) struct Sizes {
    /// Publishes per publish measurement.
    pub(crate) publishes: usize,
    /// Client counts for publishing.
    pub(crate) publish_clients: Vec<usize>,
    /// How long each read or download measurement lasts.
    pub(crate) duration: Duration,
    /// Connections for reads and downloads.
    pub(crate) connections: usize,
    /// Index sizes for the growth scenario.
    pub(crate) growth: Vec<usize>,
    /// Sequential publishes for publish-to-visible.
    pub(crate) visible_samples: usize,
}

/// A bench crate's name: `stem` and `index` behind four letters from their hash, so names
/// spread over the index's directories as real names do. Names sharing their first four
/// characters would put every crate of a run into one directory, and every commit would
/// rewrite that directory's tree of thousands of entries, a cost real registries do not have.
fn crate_name(stem: &str, index: usize) -> String {
    // FNV-1a: stable across runs and platforms.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in stem.bytes().chain((index as u64).to_le_bytes()) {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    let letters: String = (0..4)
        .map(|position| char::from(b'a' + ((hash >> (position * 8)) % 26) as u8))
        .collect();
    format!("{letters}{stem}{index}")
}

#[cfg(test)]
mod tests {
    use super::crate_name;

    #[test]
    fn names_are_valid_and_spread_over_directories() {
        let names: Vec<String> = (0..1000)
            .map(|index| crate_name("pubr0c64n", index))
            .collect();
        for name in &names {
            assert!(name.starts_with(|c: char| c.is_ascii_lowercase()), "{name}");
            assert!(name.chars().all(|c| c.is_ascii_alphanumeric()), "{name}");
            assert!(name.len() <= 64, "{name}");
        }
        let unique: std::collections::HashSet<&String> = names.iter().collect();
        assert_eq!(unique.len(), names.len());
        // The index directory is the first four characters.
        let directories: std::collections::HashSet<&str> =
            names.iter().map(|name| &name[..4]).collect();
        assert!(directories.len() > 900, "{} directories", directories.len());
        assert_eq!(crate_name("pubr0c64n", 7), names[7], "names are stable");
    }
}
