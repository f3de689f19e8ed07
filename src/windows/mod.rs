//! Windows: what each scope produced per interval, in bounded memory.
//! (arrives with the ingestion work)
