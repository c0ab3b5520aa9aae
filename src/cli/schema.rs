//! `scimctl schema`: write the JSON Schemas of the YAML files, or check that they are current.

use std::io::Write;

use super::Failure;
use crate::error::{Error, ExitStatus};
use crate::schema;

pub(super) fn schema_cmd(
    dir: &std::path::Path,
    check: bool,
    out: &mut dyn Write,
) -> Result<ExitStatus, Failure> {
    if check {
        let stale = schema::stale(dir);
        if !stale.is_empty() {
            return Err(Error::StaleSchemas(stale).into());
        }
        writeln!(out, "{}: schemas are current", dir.display())?;
        return Ok(ExitStatus::Success);
    }
    for name in schema::write(dir)? {
        writeln!(out, "{}", dir.join(name).display())?;
    }
    Ok(ExitStatus::Success)
}
