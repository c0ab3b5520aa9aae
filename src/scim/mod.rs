//! The SCIM client layer: the only code that speaks HTTP to a tenant. (Being built.)
