//! Peer registries measured in the same run as ours, with the same load: Ktra 0.7.0 (its
//! default sled store, a `file://` git remote), the registry our users move from. It has no
//! sparse index, so publishing and downloads are measured; every publish waits for its git
//! push, as ours do by default.

use std::net::SocketAddr;

use ktra_testing::peers::Ktra;

use crate::scenarios::{
    Figure, Figures, Sizes, peer_downloads, publish_bodies, publish_load, record_publish,
};

/// The configuration name the figures carry.
pub(crate) const KTRA_0_7: &str = "ktra-0.7.0";

/// At most this many publishes per measurement: Ktra commits and pushes each one, so the
/// counts our registry gets would take it many minutes.
const MAX_PUBLISHES: usize = 400;

/// Measures Ktra 0.7.0's publishes at each client count and its downloads, `runs` times. A refused or failed
/// publish is counted, not fatal: a peer's failures under load are part of the comparison.
pub(crate) async fn ktra_0_7(sizes: &Sizes, runs: usize) -> anyhow::Result<Vec<Figure>> {
    eprintln!("bench: starting {KTRA_0_7}");
    let dir = tempfile::Builder::new().disable_cleanup(true).tempdir()?;
    let ktra = Ktra::start(dir.path());
    let token = ktra.new_user("bench", "a bench password").await;
    let address = SocketAddr::from(([127, 0, 0, 1], ktra.port));
    let mut figures = Figures::new(KTRA_0_7);
    for run in 0..runs {
        eprintln!("bench: {KTRA_0_7} run {}/{runs}", run + 1);
        for &clients in &sizes.publish_clients {
            let bodies = publish_bodies(
                &format!("peerr{run}c{clients}n"),
                sizes.publishes.min(MAX_PUBLISHES),
                1,
            );
            let result = publish_load(address, &token, clients, bodies).await?;
            let variant = format!("{clients} clients");
            record_publish(&mut figures, &variant, &result);
            figures.record(
                "publish",
                &variant,
                "failed",
                "publishes",
                result.unexpected(200) as f64,
            );
        }
        peer_downloads(address, &token, sizes, run, &mut figures).await?;
    }
    ktra.service.terminate();
    Ok(figures.into_inner())
}
