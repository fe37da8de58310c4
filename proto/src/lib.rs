//! The gRPC schema between Ktra's API service and its indexer, generated from
//! `ktra/indexer/v1/indexer.proto`, and how a trace crosses it ([`trace`]).

pub mod trace;

/// Version 1 of the indexer protocol.
pub mod indexer {
    /// Messages and the client and server of `ktra.indexer.v1.Indexer`.
    pub mod v1 {
        tonic::include_proto!("ktra.indexer.v1");
    }
}
