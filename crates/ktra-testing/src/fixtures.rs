//! Crate fixtures: publish bodies in cargo's wire format.

use std::collections::BTreeMap;
use std::io::Write;

use flate2::Compression;
use flate2::write::GzEncoder;
use serde_json::{Value, json};

/// A crate version to publish, built the way `cargo publish` builds its request.
#[derive(Debug, Clone)]
pub struct CrateFixture {
    /// The crate name.
    pub name: String,
    /// The version.
    pub version: String,
    /// Dependencies, as cargo's publish JSON objects.
    pub deps: Vec<Value>,
    /// Features.
    pub features: BTreeMap<String, Vec<String>>,
    /// Extra files under the crate directory: (relative path, content).
    pub files: Vec<(String, Vec<u8>)>,
    /// The description.
    pub description: Option<String>,
    /// A `Cargo.toml` to put in the tarball instead of the matching one.
    pub manifest_override: Option<String>,
}

impl CrateFixture {
    /// A crate with a `Cargo.toml` and an empty `src/lib.rs`.
    pub fn new(name: &str, version: &str) -> Self {
        Self {
            name: name.to_owned(),
            version: version.to_owned(),
            deps: Vec::new(),
            features: BTreeMap::new(),
            files: vec![("src/lib.rs".to_owned(), b"pub fn f() {}\n".to_vec())],
            description: Some(format!("the {name} crate")),
            manifest_override: None,
        }
    }

    /// Adds a normal dependency on `name` with requirement `req`.
    #[must_use]
    pub fn dep(mut self, name: &str, req: &str) -> Self {
        self.deps.push(json!({
            "name": name, "version_req": req, "features": [], "optional": false,
            "default_features": true, "target": null, "kind": "normal",
        }));
        self
    }

    /// Adds a file of `size` pseudo-random bytes (incompressible, so the `.crate` grows too).
    #[must_use]
    pub fn with_payload(mut self, size: usize) -> Self {
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let bytes = (0..size)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state.to_le_bytes()[0]
            })
            .collect();
        self.files.push(("payload.bin".to_owned(), bytes));
        self
    }

    /// Returns the publish metadata JSON.
    pub fn metadata(&self) -> Value {
        json!({
            "name": self.name,
            "vers": self.version,
            "deps": self.deps,
            "features": self.features,
            "authors": [],
            "description": self.description,
            "documentation": null,
            "homepage": null,
            "readme": null,
            "readme_file": null,
            "keywords": [],
            "categories": [],
            "license": "MIT",
            "license_file": null,
            "repository": null,
            "badges": {},
            "links": null,
            "rust_version": null,
        })
    }

    /// Returns the `Cargo.toml` placed in the tarball.
    pub fn manifest(&self) -> String {
        if let Some(manifest) = &self.manifest_override {
            return manifest.clone();
        }
        format!(
            "[package]\nname = \"{}\"\nversion = \"{}\"\nedition = \"2021\"\nlicense = \"MIT\"\n",
            self.name, self.version
        )
    }

    /// Builds the `.crate` file: a gzipped tarball under `{name}-{version}/`.
    pub fn crate_file(&self) -> Vec<u8> {
        let prefix = format!("{}-{}", self.name, self.version);
        let mut builder = tar::Builder::new(GzEncoder::new(Vec::new(), Compression::fast()));
        let mut entries = vec![("Cargo.toml".to_owned(), self.manifest().into_bytes())];
        entries.extend(self.files.iter().cloned());
        for (path, content) in entries {
            let mut header = tar::Header::new_gnu();
            header.set_size(content.len() as u64);
            header.set_mode(0o644);
            header.set_entry_type(tar::EntryType::Regular);
            builder
                .append_data(&mut header, format!("{prefix}/{path}"), content.as_slice())
                .expect("writing to memory cannot fail");
        }
        let mut encoder = builder.into_inner().expect("writing to memory cannot fail");
        encoder.flush().expect("writing to memory cannot fail");
        encoder.finish().expect("writing to memory cannot fail")
    }

    /// Builds the whole publish body from the given metadata and crate file.
    pub fn body_from(metadata: &Value, crate_file: &[u8]) -> Vec<u8> {
        let json = serde_json::to_vec(metadata).expect("JSON values serialize");
        let mut body = Vec::with_capacity(8 + json.len() + crate_file.len());
        for part in [json.as_slice(), crate_file] {
            let length = u32::try_from(part.len()).expect("fixtures are smaller than 4 GiB");
            body.extend_from_slice(&length.to_le_bytes());
            body.extend_from_slice(part);
        }
        body
    }

    /// Builds the whole publish body.
    pub fn body(&self) -> Vec<u8> {
        Self::body_from(&self.metadata(), &self.crate_file())
    }
}
