//! (arrives with the ingestion work)
