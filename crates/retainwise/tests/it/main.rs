//! Integration tests of the whole application, compiled as one test binary: a real SQLite
//! database and a real local object store per test, the real HTTP server on port 0, the real
//! worker (driven step by step or running in the background), and the real `retainwise` binary
//! where a process must be killed or signalled.

mod cut_proxy;
mod fleet;
mod helpers;
mod s3_proxy;

mod audit;
mod auth;
mod binary;
mod cancel;
mod caps;
mod chunks;
mod cli_settings;
mod corpus;
mod data_quality;
mod dates;
mod decimal_separator;
mod deploy;
mod direct_upload;
mod drift;
mod drills;
mod dropin;
mod duplicate_ids;
mod erasure;
mod errors;
mod explain_option;
mod explanations;
mod history;
mod import_original;
mod intake;
mod intake_trial;
mod intake_trial3;
mod intake_trial4;
mod intake_trial6;
mod jobs;
mod mapping;
mod masking;
mod models;
mod orgs;
mod outcomes;
mod pipeline;
mod quota;
mod readings;
mod retention;
mod saas_synonyms;
mod schedules;
mod security;
mod startup;
mod upload;
mod web;
mod web_live;
mod webhooks;
mod worker;
