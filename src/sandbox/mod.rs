//! The embedded SCIM 2.0 sandbox: a local store served over loopback. (Being built.)
