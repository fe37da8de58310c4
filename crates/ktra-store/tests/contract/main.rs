//! The metadata store contract, run against every backend.

/// Runs every function of `suite` against a fresh store from `$open` (an async function
/// returning what must live as long as the store, and the store), seen through the
/// instrumentation decorator, which must report every call and no failure. One list, so every
/// backend runs the whole contract.
macro_rules! contract_tests {
    ($open:ident) => {
        contract_tests!(
            $open:
            users_and_tokens,
            rehashing_a_password_keeps_the_tokens,
            publish_appends_and_refuses,
            yank_flips_one_line,
            owners_never_run_out,
            pending_changes_and_acknowledgements,
            search_and_listing,
            concurrent_publishes_of_one_version_admit_one,
            rate_windows_count_and_end,
            scoped_tokens_list_and_revoke,
            disabled_users_lose_their_tokens,
            invitations_are_single_use,
            admins_change_any_owners_but_never_the_last,
            audit_log_pages_newest_first,
            every_change_records_its_event_and_a_refusal_none,
            publishes_can_require_the_crate_to_exist_or_not,
            index_files_are_replaced_only_at_their_revision,
            versions_keep_what_they_say_about_themselves,
            the_overview_lists_every_crate,
            sessions_live_until_they_end_or_expire,
            users_are_listed_with_their_state,
            downloads_add_up_per_version_day_and_crate,
        );
    };
    ($open:ident: $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let (_keep, store) = $open().await;
                let recorder = std::sync::Arc::new(crate::recorder::Recorder::default());
                let observed = ktra_store::InstrumentedStore::new(
                    store,
                    std::sync::Arc::clone(&recorder) as _,
                );
                crate::suite::$name(std::sync::Arc::new(observed)).await;
                recorder.assert_metadata_reported_without_failures();
            }
        )*
    };
}

mod blob;
mod embedded;
mod recorder;
mod redis;
mod suite;
