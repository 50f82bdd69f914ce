//! The jit signing service and client. Features arrive with their own issue.
#![forbid(unsafe_code)]
