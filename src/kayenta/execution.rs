//! Kayenta's canary execution request and status JSON.
