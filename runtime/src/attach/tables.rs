//! Classifier tables of loaded filters: the values of each array map an object's
//! manifest lists in `tables` (the table-driven classifier's nodes and candidate rules,
//! `pfc_compiler::codegen::table`), read from the object and written into the new
//! program's maps before it is attached or swapped in, as static sets' keys are
//! (`sets.rs`). A table never changes after that: a new rule file is a new program with
//! its own arrays.

use std::io;

use super::{AttachError, BpfSys, Filters, LoadRequest, ProgInfo};

impl<S: BpfSys> Filters<S> {
    /// Writes every table of `request`'s object into `prog`'s maps.
    pub(super) fn fill_tables(&self, prog: &ProgInfo, request: &LoadRequest<'_>) -> Result<(), AttachError> {
        if request.manifest.tables.is_empty() {
            return Ok(());
        }
        let error = |map: &str, source: io::Error| AttachError::TableMap { map: map.to_string(), source };
        let first = &request.manifest.tables[0].map;
        let tables = pfc_compiler::object::read_table_contents(request.object, &request.manifest)
            .map_err(|source| error(first, io::Error::new(io::ErrorKind::InvalidData, source.to_string())))?;
        let maps = self.sys.table_maps(prog.id).map_err(|source| error(first, source))?;
        for (table, values) in tables {
            let id = maps.iter().find(|(name, _)| *name == table.map).map(|(_, id)| *id);
            let id = id.ok_or_else(|| error(&table.map, io::Error::new(io::ErrorKind::NotFound, "no such map")))?;
            self.sys.write_values(id, &values).map_err(|source| error(&table.map, source))?;
        }
        Ok(())
    }
}
