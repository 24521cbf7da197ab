//! Input checks shared by every loss. Each check costs at most two scalar read-backs from
//! the device (the label range: its minimum and its maximum), so they are cheap enough to
//! run on every call.

use candle_core::{DType, Tensor};

use crate::error::{Error, Result};
use crate::host_reads;

/// The dtype the fused ops compute in for an input of `dtype`: f64 for f64, f32 for the
/// rest (f32, f16, bf16; half inputs are read as they are and widened element by element).
/// Labels and the temperature go to the ops in it. (Row sums are totalled in f64 either way.)
pub(crate) fn compute_dtype(dtype: DType) -> DType {
    match dtype {
        DType::F64 => DType::F64,
        _ => DType::F32,
    }
}

fn is_float(dtype: DType) -> bool {
    matches!(dtype, DType::F16 | DType::BF16 | DType::F32 | DType::F64)
}

/// A float tensor of rank 2 with at least one row and one column; returns `(rows, cols)`.
pub(crate) fn float_matrix(t: &Tensor, input: &'static str) -> Result<(usize, usize)> {
    float_dtype(t, input)?;
    let (rows, cols) = t.dims2().map_err(|_| Error::Shape {
        input,
        expected: "a 2-D tensor [n, d]".into(),
        got: t.dims().to_vec(),
    })?;
    if rows == 0 || cols == 0 {
        return Err(Error::Empty {
            input,
            reason: format!("shape {:?}", t.dims()),
        });
    }
    Ok((rows, cols))
}

/// A float tensor of rank 1 with at least one element; returns its length.
pub(crate) fn float_vector(t: &Tensor, input: &'static str) -> Result<usize> {
    float_dtype(t, input)?;
    vector_len(t, input)
}

/// A tensor of rank 1 with at least one element; returns its length.
pub(crate) fn vector_len(t: &Tensor, input: &'static str) -> Result<usize> {
    let n = t.dims1().map_err(|_| Error::Shape {
        input,
        expected: "a 1-D tensor [n]".into(),
        got: t.dims().to_vec(),
    })?;
    if n == 0 {
        return Err(Error::Empty {
            input,
            reason: "no elements".into(),
        });
    }
    Ok(n)
}

pub(crate) fn float_dtype(t: &Tensor, input: &'static str) -> Result<()> {
    if is_float(t.dtype()) {
        Ok(())
    } else {
        Err(Error::DType {
            input,
            expected: "a float dtype (f32, f64, f16, bf16)",
            got: t.dtype(),
        })
    }
}

/// The exact shape `expected`, for an input that must match another one.
pub(crate) fn shape_is(t: &Tensor, input: &'static str, expected: &[usize]) -> Result<()> {
    if t.dims() == expected {
        Ok(())
    } else {
        Err(Error::Shape {
            input,
            expected: format!("{expected:?}"),
            got: t.dims().to_vec(),
        })
    }
}

/// `t` lives on the same device as `reference`.
pub(crate) fn same_device(
    t: &Tensor,
    input: &'static str,
    reference: &Tensor,
    reference_name: &'static str,
) -> Result<()> {
    if t.device().same_device(reference.device()) {
        Ok(())
    } else {
        Err(Error::DeviceMismatch {
            input,
            reference: reference_name,
            got: format!("{:?}", t.device().location()),
            expected: format!("{:?}", reference.device().location()),
        })
    }
}

/// The dtype the composed losses compute in, whatever their input dtype: their work is
/// O(n·d), negligible next to a model, and f64 keeps an f32 result as accurate as its f32
/// inputs allow (e.g. `1 − cos` of nearly parallel vectors, the spread of identical points).
pub(crate) const COMPOSED_DTYPE: DType = DType::F64;

/// No NaN and no ±inf anywhere: `t − t` is zero everywhere exactly when `t` is finite,
/// so one sum and one scalar read-back decide it on any device.
#[allow(clippy::eq_op)] // `t − t` is the test itself, not a slip
pub(crate) fn finite(t: &Tensor, input: &'static str) -> Result<()> {
    let residue = (t - t)?
        .to_dtype(DType::F32)?
        .sum_all()?
        .to_scalar::<f32>()?;
    host_reads::note();
    if residue == 0.0 {
        Ok(())
    } else {
        Err(Error::NonFinite { input })
    }
}

/// Integer class labels (U8, U32 or I64) in `0..n_classes`, returned as read to the host
/// (one read, which the range check and any further use on the host share). A label out of
/// range is reported as the lowest when that is negative, else the highest.
pub(crate) fn class_labels(
    labels: &Tensor,
    input: &'static str,
    n_classes: usize,
) -> Result<Vec<u32>> {
    class_label_dtype(labels, input)?;
    let values = labels.to_dtype(DType::I64)?.to_vec1::<i64>()?;
    host_reads::note();
    let lowest = values.iter().copied().min().unwrap_or(0);
    let highest = values.iter().copied().max().unwrap_or(0);
    for value in [lowest, highest] {
        if value < 0 || value >= n_classes as i64 {
            return Err(Error::LabelOutOfRange {
                input,
                value: value as f64,
                allowed: format!("0..{n_classes}"),
            });
        }
    }
    Ok(values.into_iter().map(|v| v as u32).collect())
}

/// An integer dtype for class labels: U8, U32 or I64.
pub(crate) fn class_label_dtype(labels: &Tensor, input: &'static str) -> Result<()> {
    if matches!(labels.dtype(), DType::U8 | DType::U32 | DType::I64) {
        Ok(())
    } else {
        Err(Error::DType {
            input,
            expected: "an integer dtype (u8, u32, i64)",
            got: labels.dtype(),
        })
    }
}

/// Binary labels of any dtype whose values are exactly 0 or 1; returns them as `dtype`.
pub(crate) fn binary_labels(labels: &Tensor, input: &'static str, dtype: DType) -> Result<Tensor> {
    let as_float = labels.to_dtype(dtype)?;
    let is_binary = (as_float.eq(0.0)? + as_float.eq(1.0)?)?;
    let n_binary = is_binary
        .to_dtype(DType::U32)?
        .sum_all()?
        .to_scalar::<u32>()? as usize;
    if n_binary != as_float.elem_count() {
        let offending = as_float
            .to_dtype(DType::F64)?
            .to_vec1::<f64>()?
            .into_iter()
            .find(|v| *v != 0.0 && *v != 1.0)
            .unwrap_or(f64::NAN);
        return Err(Error::LabelOutOfRange {
            input,
            value: offending,
            allowed: "0 or 1".into(),
        });
    }
    Ok(as_float)
}

/// A finite, strictly positive parameter.
pub(crate) fn positive(name: &'static str, value: f64) -> Result<()> {
    if value.is_finite() && value > 0.0 {
        Ok(())
    } else {
        Err(Error::InvalidParameter {
            name,
            value,
            reason: "must be finite and > 0",
        })
    }
}

/// A finite parameter ≥ 0.
pub(crate) fn non_negative(name: &'static str, value: f64) -> Result<()> {
    if value.is_finite() && value >= 0.0 {
        Ok(())
    } else {
        Err(Error::InvalidParameter {
            name,
            value,
            reason: "must be finite and >= 0",
        })
    }
}
