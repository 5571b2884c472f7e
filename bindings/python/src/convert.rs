//! Python values ↔ `hiqlite::Value`, and the shapes results cross the boundary in.

use hiqlite::{ExecResult, Params, Rows, Value};
use pyo3::exceptions::{PyOverflowError, PyTypeError};
use pyo3::prelude::*;
use pyo3::types::{
    PyBool, PyByteArray, PyBytes, PyDict, PyFloat, PyInt, PyList, PyMapping, PyMemoryView, PyString, PyTuple,
};

/// One SQL value from Python: None, bool (stored as 0/1), int (64-bit), float, str, bytes-like.
pub fn to_value(o: &Bound<'_, PyAny>) -> PyResult<Value> {
    if o.is_none() {
        return Ok(Value::Null);
    }
    if let Ok(b) = o.cast::<PyBool>() {
        return Ok(Value::Integer(i64::from(b.is_true())));
    }
    if o.is_instance_of::<PyInt>() {
        return o.extract::<i64>().map(Value::Integer).map_err(|_| {
            PyOverflowError::new_err("integer parameter does not fit in 64 bits (SQLite INTEGER)")
        });
    }
    if let Ok(f) = o.cast::<PyFloat>() {
        return Ok(Value::Real(f.value()));
    }
    if let Ok(s) = o.cast::<PyString>() {
        // `to_str` fails on lone surrogates, which cannot be stored as UTF-8.
        return Ok(Value::Text(s.to_cow()?.into_owned()));
    }
    if let Ok(b) = o.cast::<PyBytes>() {
        return Ok(Value::Blob(b.as_bytes().to_vec()));
    }
    if let Ok(b) = o.cast::<PyByteArray>() {
        return Ok(Value::Blob(b.to_vec()));
    }
    if o.is_instance_of::<PyMemoryView>() {
        let bytes = o.py().get_type::<PyBytes>().call1((o,))?;
        return Ok(Value::Blob(bytes.cast::<PyBytes>()?.as_bytes().to_vec()));
    }
    Err(PyTypeError::new_err(format!(
        "unsupported parameter type {}: use None, int, float, str, bytes or bool",
        o.get_type().name()?
    )))
}

/// Statement parameters: None, a sequence (for `?`), or a mapping (for `:name`).
pub fn to_params(p: Option<&Bound<'_, PyAny>>) -> PyResult<Params> {
    let Some(p) = p else { return Ok(Params::None) };
    if p.is_none() {
        return Ok(Params::None);
    }
    if let Ok(d) = p.cast::<PyDict>() {
        let mut named = Vec::with_capacity(d.len());
        for (k, v) in d.iter() {
            let k: String =
                k.extract().map_err(|_| PyTypeError::new_err("named parameters need str keys"))?;
            named.push((k, to_value(&v)?));
        }
        return Ok(Params::Named(named));
    }
    if let Ok(m) = p.cast::<PyMapping>() {
        // Any other mapping (MappingProxyType, a user class...): by its items, never as a
        // sequence of its keys.
        let mut named = Vec::new();
        for item in m.items()?.iter() {
            let (k, v): (String, Bound<'_, PyAny>) =
                item.extract().map_err(|_| PyTypeError::new_err("named parameters need str keys"))?;
            named.push((k, to_value(&v)?));
        }
        return Ok(Params::Named(named));
    }
    if p.is_instance_of::<PyString>() || p.is_instance_of::<PyBytes>() {
        return Err(PyTypeError::new_err("parameters must be a sequence or a dict, not a str or bytes"));
    }
    if let Ok(t) = p.cast::<PyTuple>() {
        return Ok(Params::Positional(t.iter().map(|v| to_value(&v)).collect::<PyResult<_>>()?));
    }
    if let Ok(l) = p.cast::<PyList>() {
        return Ok(Params::Positional(l.iter().map(|v| to_value(&v)).collect::<PyResult<_>>()?));
    }
    let mut out = Vec::new();
    for v in p.try_iter().map_err(|_| PyTypeError::new_err("parameters must be a sequence or a dict"))? {
        out.push(to_value(&v?)?);
    }
    Ok(Params::Positional(out))
}

pub fn value_to_py<'py>(py: Python<'py>, v: &Value) -> PyResult<Bound<'py, PyAny>> {
    Ok(match v {
        Value::Null => py.None().into_bound(py),
        Value::Integer(i) => i.into_pyobject(py)?.into_any(),
        Value::Real(f) => f.into_pyobject(py)?.into_any(),
        Value::Text(s) => PyString::new(py, s).into_any(),
        Value::Blob(b) => PyBytes::new(py, b).into_any(),
    })
}

/// A result set for Python: `(columns, types, rows)`, rows as tuples.
pub struct QueryOut(pub Rows);

impl<'py> IntoPyObject<'py> for QueryOut {
    type Target = PyTuple;
    type Output = Bound<'py, PyTuple>;
    type Error = PyErr;
    fn into_pyobject(self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        let rows = PyList::empty(py);
        for r in &self.0.rows {
            let vals = r.iter().map(|v| value_to_py(py, v)).collect::<PyResult<Vec<_>>>()?;
            rows.append(PyTuple::new(py, vals)?)?;
        }
        PyTuple::new(
            py,
            [
                self.0.columns.into_pyobject(py)?.into_any(),
                self.0.types.into_pyobject(py)?.into_any(),
                rows.into_any(),
            ],
        )
    }
}

/// A write result for Python: `(rows_affected, last_insert_id, (columns, types, rows),
/// log_index)`; `log_index` is the Raft log index of the write (`None` inside a transaction).
pub struct ExecOut(pub ExecResult);

impl<'py> IntoPyObject<'py> for ExecOut {
    type Target = PyTuple;
    type Output = Bound<'py, PyTuple>;
    type Error = PyErr;
    fn into_pyobject(self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        let ExecResult { rows_affected, last_insert_id, rows, log_index, .. } = self.0;
        PyTuple::new(
            py,
            [
                rows_affected.into_pyobject(py)?.into_any(),
                last_insert_id.into_pyobject(py)?.into_any(),
                QueryOut(rows).into_pyobject(py)?.into_any(),
                log_index.into_pyobject(py)?.into_any(),
            ],
        )
    }
}

/// Each statement of a batch: a write result, or the error tuple `(kind, code, message)`.
pub struct BatchOut(pub Vec<hiqlite::Result<ExecResult>>);

impl<'py> IntoPyObject<'py> for BatchOut {
    type Target = PyList;
    type Output = Bound<'py, PyList>;
    type Error = PyErr;
    fn into_pyobject(self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let out = PyList::empty(py);
        for r in self.0 {
            match r {
                Ok(x) => out.append(ExecOut(x).into_pyobject(py)?)?,
                Err(e) => {
                    let (kind, code, msg) = crate::error::parts(&e);
                    out.append((kind, code, msg).into_pyobject(py)?)?
                }
            }
        }
        Ok(out)
    }
}
