//! Reading sales exports (CSV) into domain `SalesLine`s, one row at a time, in bounded memory:
//! format recognition from the header (`format`), cell values (`value`) and the streaming row reader
//! (`reader`). Rows that cannot be read become `RowError`s naming the line and column; they never stop
//! the rows after them.

pub mod batch;
pub mod format;
pub mod reader;
mod records;
pub mod value;

pub use batch::{BatchBuilder, RowParts};
pub use format::{HeaderError, Layout, SalesFormat};
pub use reader::{ReadOptions, SalesReader};
pub use value::DateOrder;
