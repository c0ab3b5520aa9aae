//! Tests of the Genesys flavour.
