//! The web API over HTTP: every rejection answers in cargo's format with the right status and
//! stores nothing; revalidation answers 304.

mod accounts;
mod catalog;
mod publish;
mod reads;
