//! Engine errors as Python exceptions.
//!
//! Every [`EngineError`] becomes an instance of a subclass of `ooc.OocError` that carries the
//! error's details as attributes (`ColumnNotFoundError.valid`, `SQLError.line`,
//! `CorruptFileError.path`, ...). A panic inside the engine is caught on its worker thread and
//! surfaces as `InternalError`, never as pyo3's `PanicException`.

use ooc::EngineError;
use pyo3::create_exception;
use pyo3::exceptions::PyException;
use pyo3::prelude::*;
use pyo3::BoundObject;

create_exception!(
    _ooc,
    OocError,
    PyException,
    "Base class of every error raised by ooc."
);
create_exception!(
    _ooc,
    ColumnNotFoundError,
    OocError,
    "A column name that does not exist; `valid` lists the names that do."
);
create_exception!(
    _ooc,
    TableNotFoundError,
    OocError,
    "A table name in SQL that is not registered; `valid` lists the known tables."
);
create_exception!(
    _ooc,
    SQLError,
    OocError,
    "SQL that does not parse; `line` and `column` locate the problem (1-based)."
);
create_exception!(
    _ooc,
    PlanError,
    OocError,
    "A query that cannot be planned: wrong types, a misplaced aggregate, an unsupported feature."
);
create_exception!(
    _ooc,
    SchemaError,
    OocError,
    "Input files disagree on a column's type; `column` and `paths` name them."
);
create_exception!(
    _ooc,
    CorruptFileError,
    OocError,
    "A file that is not readable Parquet (truncated, corrupt); `path` names it."
);
create_exception!(
    _ooc,
    InputError,
    OocError,
    "Input that cannot be read: a missing file, an empty glob, a permission problem."
);
create_exception!(
    _ooc,
    ResourcesExhaustedError,
    OocError,
    "The memory limit is too small for the query even with spilling."
);
create_exception!(
    _ooc,
    SpillError,
    OocError,
    "Writing spill files failed: disk full, temp-size quota exceeded, unwritable directory."
);
create_exception!(
    _ooc,
    ComputeError,
    OocError,
    "A value-level error while running: overflow, an invalid cast of a value."
);
create_exception!(
    _ooc,
    OutputError,
    OocError,
    "Writing a result file failed; nothing is left under the requested name."
);
create_exception!(
    _ooc,
    QueryCancelledError,
    OocError,
    "The query was cancelled."
);
create_exception!(
    _ooc,
    ReleasedError,
    OocError,
    "A DataFrame used after `release()` (or after its `with` block): its data is gone."
);
create_exception!(
    _ooc,
    InternalError,
    OocError,
    "A bug in ooc (please report it)."
);

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("OocError", py.get_type::<OocError>())?;
    m.add("ColumnNotFoundError", py.get_type::<ColumnNotFoundError>())?;
    m.add("TableNotFoundError", py.get_type::<TableNotFoundError>())?;
    m.add("SQLError", py.get_type::<SQLError>())?;
    m.add("PlanError", py.get_type::<PlanError>())?;
    m.add("SchemaError", py.get_type::<SchemaError>())?;
    m.add("CorruptFileError", py.get_type::<CorruptFileError>())?;
    m.add("InputError", py.get_type::<InputError>())?;
    m.add(
        "ResourcesExhaustedError",
        py.get_type::<ResourcesExhaustedError>(),
    )?;
    m.add("SpillError", py.get_type::<SpillError>())?;
    m.add("ComputeError", py.get_type::<ComputeError>())?;
    m.add("OutputError", py.get_type::<OutputError>())?;
    m.add("ReleasedError", py.get_type::<ReleasedError>())?;
    m.add("QueryCancelledError", py.get_type::<QueryCancelledError>())?;
    m.add("InternalError", py.get_type::<InternalError>())?;
    Ok(())
}

/// The Python exception for an engine error, with its details as attributes.
pub(crate) fn to_py_err(error: EngineError) -> PyErr {
    Python::attach(|py| convert(py, error))
}

fn with_attrs(py: Python<'_>, err: PyErr, attrs: &[(&str, Py<PyAny>)]) -> PyErr {
    let value = err.value(py);
    for (name, v) in attrs {
        // Setting an attribute on a fresh exception instance cannot fail in practice; if it
        // did, the exception is still raised with its message.
        let _ = value.setattr(*name, v.bind(py));
    }
    err
}

fn obj<'py, T>(py: Python<'py>, value: T) -> Py<PyAny>
where
    T: IntoPyObject<'py>,
{
    match value.into_pyobject(py) {
        Ok(v) => v.into_any().unbind(),
        Err(_) => py.None(),
    }
}

fn convert(py: Python<'_>, error: EngineError) -> PyErr {
    let message = error.to_string();
    match error {
        EngineError::Syntax { line, column, .. } => with_attrs(
            py,
            SQLError::new_err(message),
            &[("line", obj(py, line)), ("column", obj(py, column))],
        ),
        EngineError::ColumnNotFound {
            name,
            valid,
            suggestion,
        } => with_attrs(
            py,
            ColumnNotFoundError::new_err(message),
            &[
                ("name", obj(py, name)),
                ("valid", obj(py, valid)),
                ("suggestion", obj(py, suggestion)),
            ],
        ),
        EngineError::TableNotFound {
            name,
            valid,
            suggestion,
        } => with_attrs(
            py,
            TableNotFoundError::new_err(message),
            &[
                ("name", obj(py, name)),
                ("valid", obj(py, valid)),
                ("suggestion", obj(py, suggestion)),
            ],
        ),
        EngineError::Type(_) | EngineError::NotSupported(_) | EngineError::Plan(_) => {
            PlanError::new_err(message)
        }
        EngineError::Execution(_) | EngineError::Arrow(_) => ComputeError::new_err(message),
        EngineError::ResourcesExhausted {
            consumer,
            requested,
            reserved,
            limit,
        } => with_attrs(
            py,
            ResourcesExhaustedError::new_err(message),
            &[
                ("consumer", obj(py, consumer)),
                ("requested", obj(py, requested)),
                ("reserved", obj(py, reserved)),
                ("limit", obj(py, limit)),
            ],
        ),
        EngineError::Io(io) => io_error(py, io, message),
        EngineError::Output { path, .. } => with_attrs(
            py,
            OutputError::new_err(message),
            &[("path", obj(py, path))],
        ),
        EngineError::Parquet(_) => OutputError::new_err(message),
        EngineError::Spill { path, .. } => {
            with_attrs(py, SpillError::new_err(message), &[("path", obj(py, path))])
        }
        EngineError::Cancelled => QueryCancelledError::new_err(message),
        _ => InternalError::new_err(message),
    }
}

fn io_error(py: Python<'_>, error: ooc::io::IoError, message: String) -> PyErr {
    use ooc::io::IoError;
    match error {
        IoError::CorruptFile { path, .. } | IoError::DamagedCacheEntry { path, .. } => with_attrs(
            py,
            CorruptFileError::new_err(message),
            &[("path", obj(py, path.display().to_string()))],
        ),
        IoError::SchemaMismatch {
            column,
            first,
            second,
            ..
        } => with_attrs(
            py,
            SchemaError::new_err(message),
            &[
                ("column", obj(py, column)),
                (
                    "paths",
                    obj(
                        py,
                        vec![first.display().to_string(), second.display().to_string()],
                    ),
                ),
            ],
        ),
        IoError::Io { path, .. } | IoError::Changed { path, .. } => with_attrs(
            py,
            InputError::new_err(message),
            &[("path", obj(py, path.display().to_string()))],
        ),
        IoError::NoFiles { location, .. } => with_attrs(
            py,
            InputError::new_err(message),
            &[("path", obj(py, location))],
        ),
        IoError::BadRecord { path, line, .. } => with_attrs(
            py,
            InputError::new_err(message),
            &[
                ("path", obj(py, path.display().to_string())),
                ("line", obj(py, line)),
            ],
        ),
        IoError::InvalidArgument(_) => PlanError::new_err(message),
        IoError::Arrow(_) => ComputeError::new_err(message),
        _ => InternalError::new_err(message),
    }
}

/// Shorthand: map an engine result into a Python result.
pub(crate) trait IntoPyResult<T> {
    fn py(self) -> PyResult<T>;
}

impl<T> IntoPyResult<T> for Result<T, EngineError> {
    fn py(self) -> PyResult<T> {
        self.map_err(to_py_err)
    }
}
