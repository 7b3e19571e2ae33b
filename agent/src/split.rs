//! Turning one fetched value into output files: JMESPath entries and formats.
//! Knows nothing of AWS or of the disk.

/// One file to write, relative to the mount path.
pub struct OutFile {
    pub path: String,
    pub contents: Vec<u8>,
    pub mode: u32,
}

impl std::fmt::Debug for OutFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "OutFile({}, <{} bytes>, {:o})",
            self.path,
            self.contents.len(),
            self.mode
        )
    }
}
