//! Crashes and outages: after each, the remote's index equals the store's state.
