//! The Arrow PyCapsule interface: handing record batches to and from other Python libraries
//! (pyarrow, Polars, DuckDB, pandas) through the Arrow C data and stream interfaces, sharing
//! buffers instead of copying them.
//!
//! Producers wrap the C structs in capsules named `arrow_schema`, `arrow_array` and
//! `arrow_array_stream`; a consumer moves the struct out and marks it released, so the
//! capsule's destructor only releases what nobody took.

use arrow::array::{Array, RecordBatch, RecordBatchIterator, RecordBatchReader, StructArray};
use arrow::datatypes::{Schema, SchemaRef};
use arrow::ffi::{FFI_ArrowArray, FFI_ArrowSchema};
use arrow::ffi_stream::{FFI_ArrowArrayStream, RecordBatchStreamReader};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyCapsule, PyCapsuleMethods};

const SCHEMA: &std::ffi::CStr = c"arrow_schema";
const ARRAY: &std::ffi::CStr = c"arrow_array";
const STREAM: &std::ffi::CStr = c"arrow_array_stream";

/// A capsule holding `schema` as an `ArrowSchema`.
pub(crate) fn schema_capsule<'py>(
    py: Python<'py>,
    schema: &Schema,
) -> PyResult<Bound<'py, PyCapsule>> {
    let ffi = FFI_ArrowSchema::try_from(schema)
        .map_err(|e| PyValueError::new_err(format!("cannot export schema: {e}")))?;
    PyCapsule::new_with_value(py, ffi, SCHEMA)
}

/// Capsules holding one batch as an `ArrowSchema` and a struct `ArrowArray`.
pub(crate) fn array_capsules<'py>(
    py: Python<'py>,
    batch: &RecordBatch,
) -> PyResult<(Bound<'py, PyCapsule>, Bound<'py, PyCapsule>)> {
    let schema = schema_capsule(py, batch.schema_ref())?;
    let data = StructArray::from(batch.clone()).into_data();
    let array = PyCapsule::new_with_value(py, FFI_ArrowArray::new(&data), ARRAY)?;
    Ok((schema, array))
}

/// A capsule holding an `ArrowArrayStream` over `batches` (shared, not copied).
pub(crate) fn stream_capsule<'py>(
    py: Python<'py>,
    schema: SchemaRef,
    batches: Vec<RecordBatch>,
) -> PyResult<Bound<'py, PyCapsule>> {
    let reader = RecordBatchIterator::new(batches.into_iter().map(Ok), schema);
    let stream = FFI_ArrowArrayStream::new(Box::new(reader));
    PyCapsule::new_with_value(py, stream, STREAM)
}

/// Read every batch of an object implementing `__arrow_c_stream__` (a pyarrow table, a
/// Polars or ooc data frame, a DuckDB relation, ...). The buffers stay shared with the
/// producer.
pub(crate) fn import_stream(obj: &Bound<'_, PyAny>) -> PyResult<(SchemaRef, Vec<RecordBatch>)> {
    let py = obj.py();
    if !obj.hasattr("__arrow_c_stream__")? {
        return Err(PyTypeError::new_err(format!(
            "expected an object with the Arrow PyCapsule interface (__arrow_c_stream__), got {}",
            obj.get_type().name()?
        )));
    }
    let capsule = obj.call_method0("__arrow_c_stream__")?;
    let capsule = capsule
        .cast::<PyCapsule>()
        .map_err(|_| PyTypeError::new_err("__arrow_c_stream__ did not return a PyCapsule"))?;
    let pointer = capsule.pointer_checked(Some(STREAM))?;
    // SAFETY: the capsule is named `arrow_array_stream`, so by the PyCapsule interface its
    // pointer is a valid `ArrowArrayStream`; `from_raw` moves it out and marks the original
    // released, so the producer's capsule destructor will not release it again.
    let reader =
        unsafe { RecordBatchStreamReader::from_raw(pointer.as_ptr() as *mut FFI_ArrowArrayStream) }
            .map_err(|e| PyValueError::new_err(format!("cannot import Arrow stream: {e}")))?;
    let schema = reader.schema();
    let batches = py
        .detach(|| reader.collect::<Result<Vec<_>, _>>())
        .map_err(|e| PyValueError::new_err(format!("cannot import Arrow stream: {e}")))?;
    Ok((schema, batches))
}

/// One record batch that other libraries can take through `__arrow_c_array__`
/// (`pyarrow.record_batch(obj)`).
#[pyclass(name = "ArrowBatch", module = "ooc._ooc", frozen)]
pub(crate) struct ArrowBatch {
    pub(crate) batch: RecordBatch,
}

#[pymethods]
impl ArrowBatch {
    #[pyo3(signature = (requested_schema=None))]
    fn __arrow_c_array__<'py>(
        &self,
        py: Python<'py>,
        requested_schema: Option<Bound<'py, PyAny>>,
    ) -> PyResult<(Bound<'py, PyCapsule>, Bound<'py, PyCapsule>)> {
        let _ = requested_schema;
        array_capsules(py, &self.batch)
    }

    fn __arrow_c_schema__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyCapsule>> {
        schema_capsule(py, self.batch.schema_ref())
    }

    #[getter]
    fn num_rows(&self) -> usize {
        self.batch.num_rows()
    }
}

/// Bytes of the buffers `batches` point into, each region counted once however many arrays
/// share it: a buffer the arrays of a hundred batches share (the strings a view column points
/// into, a memory-mapped cache entry) is counted once, and only the bytes reachable through
/// the arrays' buffers, not the whole allocation they were sliced from.
pub(crate) fn batches_bytes(batches: &[RecordBatch]) -> usize {
    fn walk(data: &arrow::array::ArrayData, seen: &mut std::collections::HashSet<(usize, usize)>) {
        let mut add = |ptr: *const u8, len: usize| {
            seen.insert((ptr as usize, len));
        };
        for buffer in data.buffers() {
            add(buffer.as_ptr(), buffer.len());
        }
        if let Some(nulls) = data.nulls() {
            add(nulls.buffer().as_ptr(), nulls.buffer().len());
        }
        for child in data.child_data() {
            walk(child, seen);
        }
    }
    let mut seen = std::collections::HashSet::new();
    for batch in batches {
        for column in batch.columns() {
            walk(&column.to_data(), &mut seen);
        }
    }
    // Overlapping regions (slices of one buffer) are merged.
    let mut regions: Vec<(usize, usize)> = seen.into_iter().collect();
    regions.sort_unstable();
    let (mut total, mut end) = (0usize, 0usize);
    for (start, len) in regions {
        let stop = start + len;
        if stop > end {
            total += stop - start.max(end);
            end = stop;
        }
    }
    total
}
