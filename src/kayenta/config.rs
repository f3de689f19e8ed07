//! A Kayenta canary config converted to an Augury model.
