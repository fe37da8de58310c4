//! Ktra's index as cargo read it: the files of a checkout (`index_config.local_path`, or any
//! clone of the remote), one JSON line per published version.
//!
//! Ktra wrote `null` for unset keys (`links`, `target`, `registry`, `package`), no `v`, no
//! `features2`, and its semver 0.11 spelling of requirements (`>=1.0.0, <2.0.0`). The lines
//! are kept as Ktra served them, with the `null` keys left out, as crates.io leaves them out.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use ktra_core::index::{DependencyKind, FeatureMap, IndexDependency, IndexLine};
use serde::Deserialize;

/// One line of Ktra's index.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct KtraIndexLine {
    /// The crate name, as published.
    pub name: String,
    /// The version.
    pub vers: String,
    /// Dependencies.
    #[serde(default)]
    pub deps: Vec<KtraIndexDependency>,
    /// SHA-256 of the crate file.
    pub cksum: String,
    /// Features (Ktra kept `dep:` and `?/` values here).
    #[serde(default)]
    pub features: FeatureMap,
    /// Features split off by a later writer, if any.
    pub features2: Option<FeatureMap>,
    /// Whether the version is yanked.
    #[serde(default)]
    pub yanked: bool,
    /// The native library linked.
    pub links: Option<String>,
    /// The minimum Rust version, if a later writer added it.
    pub rust_version: Option<String>,
    /// The entry's schema version, if any.
    pub v: Option<u32>,
}

/// One dependency in Ktra's index.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct KtraIndexDependency {
    /// The name the dependent uses.
    pub name: String,
    /// The requirement.
    pub req: String,
    /// Features enabled.
    #[serde(default)]
    pub features: Vec<String>,
    /// Optional or not.
    #[serde(default)]
    pub optional: bool,
    /// Default features on or off.
    #[serde(default = "yes")]
    pub default_features: bool,
    /// The target, if limited to one.
    pub target: Option<String>,
    /// `normal`, `build` or `dev` (`null` read as normal).
    pub kind: Option<DependencyKind>,
    /// Another registry's index URL.
    pub registry: Option<String>,
    /// The real crate name when renamed.
    pub package: Option<String>,
}

fn yes() -> bool {
    true
}

impl KtraIndexLine {
    /// The line as this registry stores it: the same fields and values, `null` keys left out.
    pub fn to_index_line(&self) -> IndexLine {
        IndexLine {
            name: self.name.clone(),
            vers: self.vers.clone(),
            deps: self
                .deps
                .iter()
                .map(|dep| IndexDependency {
                    name: dep.name.clone(),
                    req: dep.req.clone(),
                    features: dep.features.clone(),
                    optional: dep.optional,
                    default_features: dep.default_features,
                    target: dep.target.clone(),
                    kind: dep.kind.unwrap_or(DependencyKind::Normal),
                    registry: dep.registry.clone(),
                    package: dep.package.clone(),
                })
                .collect(),
            cksum: self.cksum.clone(),
            features: self.features.clone(),
            features2: self.features2.clone(),
            yanked: self.yanked,
            links: self.links.clone(),
            rust_version: self.rust_version.clone(),
            pubtime: None,
            v: self.v,
        }
    }
}

/// A line of the index, where it was found.
#[derive(Debug, Clone)]
pub struct FoundLine {
    /// The file, relative to the checkout.
    pub file: String,
    /// The line number, from 1.
    pub number: usize,
    /// The line, or why it does not parse.
    pub line: Result<KtraIndexLine, String>,
}

/// Every index file of a checkout, by file name (the crate name in lower case).
#[derive(Debug, Default)]
pub struct KtraIndex {
    /// File name to its lines, in file order (Ktra appended, so: publish order).
    pub files: BTreeMap<String, Vec<FoundLine>>,
    /// Files found outside cargo's index layout, left out.
    pub ignored: Vec<String>,
}

impl KtraIndex {
    /// Reads every file of the checkout at `root` except `config.json` and what starts with a
    /// dot (`.git`).
    ///
    /// # Errors
    ///
    /// When the checkout cannot be read.
    pub fn read(root: &Path) -> std::io::Result<Self> {
        if !root.is_dir() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!(
                    "no index checkout at {} (index_config.local_path): give Ktra's clone, or \
                     clone its remote and give that",
                    root.display()
                ),
            ));
        }
        let mut index = Self::default();
        let mut pending = vec![PathBuf::new()];
        while let Some(relative) = pending.pop() {
            for entry in std::fs::read_dir(root.join(&relative))? {
                let entry = entry?;
                let name = entry.file_name().to_string_lossy().into_owned();
                if name.starts_with('.')
                    || (relative.as_os_str().is_empty() && name == "config.json")
                {
                    continue;
                }
                let path = relative.join(&name);
                let kind = entry.file_type()?;
                if kind.is_dir() {
                    pending.push(path);
                } else if kind.is_file() {
                    let file = path.to_string_lossy().replace('\\', "/");
                    // Only files where cargo looks for a crate: a README or anything else
                    // committed beside them is not part of the index.
                    if ktra_core::index::index_path(&name) != file
                        || name.to_ascii_lowercase() != name
                    {
                        index.ignored.push(file);
                        continue;
                    }
                    let bytes = std::fs::read(entry.path())?;
                    let lines = match String::from_utf8(bytes) {
                        Ok(text) => text
                            .split('\n')
                            .enumerate()
                            .filter(|(_, line)| !line.trim().is_empty())
                            .map(|(at, line)| FoundLine {
                                file: file.clone(),
                                number: at + 1,
                                line: serde_json::from_str(line).map_err(|error| error.to_string()),
                            })
                            .collect::<Vec<_>>(),
                        Err(_) => vec![FoundLine {
                            file: file.clone(),
                            number: 1,
                            line: Err("the file is not UTF-8".to_owned()),
                        }],
                    };
                    index.files.entry(name).or_default().extend(lines);
                }
            }
        }
        Ok(index)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_as_ktra_wrote_it_loses_its_nulls_and_nothing_else() {
        let ktra = r#"{"name":"Other_Crate","vers":"1.0.0-beta.1","deps":[{"name":"tiny","req":">=0.1.0, <0.2.0","features":[],"optional":true,"default_features":true,"target":null,"kind":"normal","registry":null,"package":"tiny-crate"},{"name":"ryu","req":">=1.0.0, <2.0.0","features":[],"optional":false,"default_features":true,"target":"cfg(windows)","kind":"dev","registry":"https://github.com/rust-lang/crates.io-index","package":null}],"cksum":"8456","features":{"fast":["dep:tiny"],"default":[]},"yanked":false,"links":null}"#;
        let line: KtraIndexLine = serde_json::from_str(ktra).unwrap();
        let ours = line.to_index_line().to_json();
        assert!(!ours.contains("null"), "{ours}");
        let expected = r#"{"name":"Other_Crate","vers":"1.0.0-beta.1","deps":[{"name":"tiny","req":">=0.1.0, <0.2.0","features":[],"optional":true,"default_features":true,"kind":"normal","package":"tiny-crate"},{"name":"ryu","req":">=1.0.0, <2.0.0","features":[],"optional":false,"default_features":true,"target":"cfg(windows)","kind":"dev","registry":"https://github.com/rust-lang/crates.io-index"}],"cksum":"8456","features":{"default":[],"fast":["dep:tiny"]},"yanked":false}"#;
        assert_eq!(ours, expected);
    }

    #[test]
    fn a_checkout_is_read_without_config_json_or_git() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(root.path().join("ti/ny")).unwrap();
        std::fs::create_dir_all(root.path().join(".git")).unwrap();
        std::fs::write(root.path().join(".git/HEAD"), "ref").unwrap();
        std::fs::write(root.path().join("config.json"), "{}").unwrap();
        std::fs::write(root.path().join("README.md"), "# our index\n").unwrap();
        std::fs::write(
            root.path().join("ti/ny/tiny-crate"),
            "{\"name\":\"tiny-crate\",\"vers\":\"0.1.0\",\"deps\":[],\"cksum\":\"ab\",\"features\":{},\"yanked\":true,\"links\":null}\nnot json",
        )
        .unwrap();
        let index = KtraIndex::read(root.path()).unwrap();
        assert_eq!(index.files.keys().collect::<Vec<_>>(), ["tiny-crate"]);
        assert_eq!(index.ignored, ["README.md"]);
        let lines = &index.files["tiny-crate"];
        assert!(lines[0].line.as_ref().unwrap().yanked);
        assert_eq!(lines[1].number, 2);
        assert!(lines[1].line.is_err());
        assert_eq!(lines[0].file, "ti/ny/tiny-crate");
    }
}
