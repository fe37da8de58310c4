//! The gRPC schema between Ktra's API service and its indexer, generated from
//! `ktra/indexer/v1/indexer.proto`, how a trace crosses it ([`trace`]), and how a crate named
//! in a message becomes a [`CrateId`] on the side that receives it.

use ktra_core::name::{CrateId, NameError};

pub mod trace;

/// Version 1 of the indexer protocol.
pub mod indexer {
    /// Messages and the client and server of `ktra.indexer.v1.Indexer`.
    pub mod v1 {
        tonic::include_proto!("ktra.indexer.v1");
    }
}

impl indexer::v1::CrateState {
    /// A crate's whole index file at a revision, named by its identity.
    pub fn new(krate: &CrateId, revision: u64, content: Vec<u8>) -> Self {
        Self {
            name: krate.name().to_owned(),
            revision,
            content,
        }
    }

    /// The crate the file belongs to.
    ///
    /// # Errors
    ///
    /// The rule the name breaks, for a message no Ktra API sends.
    pub fn crate_id(&self) -> Result<CrateId, NameError> {
        CrateId::new(&self.name)
    }
}

impl indexer::v1::Acknowledgement {
    /// Acknowledges `revision` of a crate.
    pub fn new(krate: &CrateId, revision: u64) -> Self {
        Self {
            name: krate.name().to_owned(),
            revision,
        }
    }

    /// The crate acknowledged.
    ///
    /// # Errors
    ///
    /// The rule the name breaks, for a message no Ktra indexer sends.
    pub fn crate_id(&self) -> Result<CrateId, NameError> {
        CrateId::new(&self.name)
    }
}
