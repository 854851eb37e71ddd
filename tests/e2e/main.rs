//! End-to-end tests against the real PostgreSQL and RabbitMQ (and an in-process
//! S3-compatible server). Each test has its own database, queue prefix and folder.

mod alerts;
mod api_conformance;
mod api_pipeline;
mod api_plants;
mod boundary;
mod cluster;
mod conflicts;
mod dashboard;
mod drift;
mod endpoints;
mod faults;
mod ingest;
mod load_path;
mod metrics;
mod order;
mod outages;
mod outbox;
mod own_database;
mod partitioned;
mod plan;
mod poison;
mod reconcile;
mod refused;
mod rejection;
mod s3_events;
mod s3_store;
mod standby;
