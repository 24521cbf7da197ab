//! Each CUDA kernel's interface, declared once, here in Rust: its parameters (names and C
//! types), the constants the kernels and their launch plans share, and the parts of the
//! kernels' dynamic shared memory. Each op declares its own (`kernels.rs` beside its
//! `launch.rs`); `header` (in the tests) writes them as the C header its `.cu` file includes
//! (`kernels/<op>.cuh`, committed; the test `kernel_headers_are_current` fails when it is
//! stale, and rewrites it under `DIFFBIO_BLESS=1`). The `.cu` entry points take their
//! parameter lists from that header, so the two cannot disagree, and the plans give their
//! arguments by name (`launch::Launch::build`), so no plan writes an order. What can still
//! go wrong is checked where it would: every launch's arguments against the declaration
//! (`launch::Launch::new`), the C++ kernels' own parameter types in the emulator, and the
//! PTX entry points' parameters in `scripts/check-kernels.sh`. One thing none of them sees:
//! an entry point forwards its parameters (`NAME_ARGS`) in the declared order to a device
//! function with parameters of its own, so reordering two parameters of the same type in a
//! declaration must reorder that function's too (the parity tests would show a swap).

#[cfg(test)]
use std::fmt::Write;

/// The kernel files (each one CUDA module).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Module {
    /// `kernels/knn_entropy.cu`
    KnnEntropy,
    /// `kernels/pairwise_sigmoid_auroc.cu`
    PairwiseSigmoidAuroc,
}

/// A scalar parameter's type: C's `int`, `int64_t`, the instantiation's float `T`, `double`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scalar {
    I32,
    I64,
    Real,
    F64,
}

/// A buffer parameter's element type: the instantiation's input type `X` (f32, f64, f16,
/// bf16), its float `T` (f32, f64), `double`, `uint32_t`, `int64_t`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Elem {
    Input,
    Real,
    F64,
    U32,
    I64,
}

/// A kernel parameter: a scalar by value, or a buffer the kernel reads (`const E*`) or
/// writes (`E*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Param {
    Value(Scalar),
    Read(Elem),
    Write(Elem),
}

/// An `int` parameter.
pub(crate) const INT: Param = Param::Value(Scalar::I32);
/// An `int64_t` parameter.
pub(crate) const INT64: Param = Param::Value(Scalar::I64);
/// A parameter of the instantiation's float `T`.
pub(crate) const REAL: Param = Param::Value(Scalar::Real);
/// A `double` parameter.
pub(crate) const DOUBLE: Param = Param::Value(Scalar::F64);

/// A [`Kernel`]: `kernel!(Module, name, Instances, [param: Param, ...])`, the parameters in
/// the kernel's order, written as C writes them (`x: Read(Input), n: INT, ...`).
macro_rules! kernel {
    ($module:ident, $name:ident, $instances:ident, [$($param:ident: $ty:expr),* $(,)?]) => {
        $crate::kernel_interface::Kernel {
            name: stringify!($name),
            module: $crate::kernel_interface::Module::$module,
            instances: $crate::kernel_interface::Instances::$instances,
            params: &[$((stringify!($param), $ty)),*],
        }
    };
}
pub(crate) use kernel;

/// A [`SharedLayout`]: `layout!(NAME, [part: Elem[Dim, ...], ...])`, the parts in the
/// order the kernel carves them, each with its element type (`U32` for C's `int`) and the
/// dims whose product is its element count.
macro_rules! layout {
    ($name:ident, [$($part:ident: $elem:ident[$($dim:ident),+]),* $(,)?]) => {
        $crate::kernel_interface::SharedLayout {
            name: stringify!($name),
            parts: &[$($crate::kernel_interface::SharedPart {
                elem: $crate::kernel_interface::Elem::$elem,
                name: stringify!($part),
                count: &[$($crate::kernel_interface::Dim::$dim),+],
            }),*],
        }
    };
}
pub(crate) use layout;

/// The instantiations of a kernel, each named `name_<suffix>` (candle's `kernel_name`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Instances {
    /// One per input type X: `_f32`, `_f64`, `_f16`, `_bf16` (f16/bf16 computing in f32).
    EachInput,
    /// One per float T: `_f32`, `_f64`.
    EachReal,
    /// `_f64` only.
    F64,
}

#[cfg(test)]
impl Instances {
    /// `(suffix, C type of T)` of each instantiation.
    fn each(self) -> &'static [(&'static str, &'static str)] {
        const ALL: [(&str, &str); 4] = [
            ("f32", "float"),
            ("f64", "double"),
            ("f16", "float"),
            ("bf16", "float"),
        ];
        match self {
            Self::EachInput => &ALL,
            Self::EachReal => &ALL[..2],
            Self::F64 => &ALL[1..2],
        }
    }
}

/// A kernel's interface: its name (before the instantiation's suffix), module,
/// instantiations and parameters in order.
#[derive(Debug)]
pub(crate) struct Kernel {
    pub name: &'static str,
    #[cfg_attr(not(any(feature = "cuda", feature = "cuda-emu")), allow(dead_code))]
    pub module: Module,
    pub instances: Instances,
    pub params: &'static [(&'static str, Param)],
}

/// A `#define` the kernels read, with the value the Rust code uses.
#[cfg(test)]
#[derive(Debug)]
pub(crate) struct Constant {
    pub name: &'static str,
    pub value: ConstValue,
    pub doc: &'static str,
}

#[cfg(test)]
impl Constant {
    /// An integer constant.
    pub(crate) const fn int(name: &'static str, value: usize, doc: &'static str) -> Self {
        Self {
            name,
            value: ConstValue::Int(value as i64),
            doc,
        }
    }
}

/// A constant's value.
#[cfg(test)]
#[derive(Debug, Clone, Copy)]
pub(crate) enum ConstValue {
    Int(i64),
    Float(f64),
}

/// A factor of a shared-memory part's element count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dim {
    /// The tile's rows (`S::ROWS`).
    Rows,
    /// The tile's columns (`S::COLS`).
    Cols,
    /// Rows plus the padding (`S::ROWS + TILE_PAD`).
    PaddedRows,
    /// Columns plus the padding (`S::COLS + TILE_PAD`).
    PaddedCols,
    /// Dimensions staged per step (`TILE_DEPTH`).
    Depth,
    /// The neighbours per row (the kernel's `k`).
    K,
    /// The embedding's dimensions (the kernel's `d`).
    D,
    /// The lanes of a warp (`WARP`).
    Lanes,
    /// The batches (the kernel's `n_batches`).
    Batches,
    /// The classes summed per sweep (the kernel's `class_chunk`).
    ClassChunk,
    /// k with per-lane lists, 0 with radix select (the kernel's `radix ? 0 : k`).
    ListK,
    /// The radix histogram's counters with radix select (a bucket per lane, and the
    /// buckets' totals: `RADIX_BUCKETS · (WARP + 1)`), 0 with lists.
    RadixCounters,
}

/// One part of a block's shared memory: its element type (`Elem::Real`, `Elem::F64` or
/// `Elem::U32` for C's `int`), name and element count (the product of its dims).
#[derive(Debug)]
pub(crate) struct SharedPart {
    pub elem: Elem,
    #[cfg_attr(not(test), allow(dead_code))]
    pub name: &'static str,
    pub count: &'static [Dim],
}

/// A block's shared memory: parts carved in order, each rounded up to 8 bytes. The header
/// gives it as an X-macro, `NAME(PART)`, calling `PART(type, name, count)` per part.
#[derive(Debug)]
pub(crate) struct SharedLayout {
    #[cfg_attr(not(test), allow(dead_code))]
    pub name: &'static str,
    pub parts: &'static [SharedPart],
}

/// The sizes a [`SharedLayout`]'s counts are taken at (those a layout does not use are
/// left at their default, 0).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct LayoutSizes {
    /// Bytes of the float `T`.
    pub real_bytes: usize,
    pub rows: usize,
    pub cols: usize,
    pub pad: usize,
    pub depth: usize,
    pub k: usize,
    pub d: usize,
    pub n_batches: usize,
    pub class_chunk: usize,
    /// Radix select (else per-lane lists).
    pub radix: bool,
    /// Buckets of a radix pass.
    pub radix_buckets: usize,
}

impl SharedLayout {
    /// The bytes the parts take at `sizes`, as the kernel carves them.
    pub(crate) fn bytes(&self, sizes: LayoutSizes) -> usize {
        let elem_bytes = |elem: Elem| match elem {
            Elem::Real | Elem::Input => sizes.real_bytes,
            Elem::F64 | Elem::I64 => 8,
            Elem::U32 => 4,
        };
        let dim = |d: Dim| match d {
            Dim::Rows => sizes.rows,
            Dim::Cols => sizes.cols,
            Dim::PaddedRows => sizes.rows + sizes.pad,
            Dim::PaddedCols => sizes.cols + sizes.pad,
            Dim::Depth => sizes.depth,
            Dim::K => sizes.k,
            Dim::D => sizes.d,
            Dim::Lanes => 32,
            Dim::Batches => sizes.n_batches,
            Dim::ClassChunk => sizes.class_chunk,
            Dim::ListK if sizes.radix => 0,
            Dim::ListK => sizes.k,
            Dim::RadixCounters if sizes.radix => sizes.radix_buckets * 33,
            Dim::RadixCounters => 0,
        };
        self.parts
            .iter()
            .map(|part| {
                let count: usize = part.count.iter().map(|&d| dim(d)).product();
                (elem_bytes(part.elem) * count).div_ceil(8) * 8
            })
            .sum()
    }
}

#[cfg(test)]
/// The C type of a scalar, in an instantiation with float `T`.
fn scalar_c(scalar: Scalar) -> &'static str {
    match scalar {
        Scalar::I32 => "int",
        Scalar::I64 => "int64_t",
        Scalar::Real => "T",
        Scalar::F64 => "double",
    }
}

#[cfg(test)]
/// The C type of a buffer element, in an instantiation with input `X` and float `T`.
fn elem_c(elem: Elem) -> &'static str {
    match elem {
        Elem::Input => "X",
        Elem::Real => "T",
        Elem::F64 => "double",
        Elem::U32 => "uint32_t",
        Elem::I64 => "int64_t",
    }
}

#[cfg(test)]
/// The PTX class of a parameter's value (pointers are 64-bit addresses), for the check of
/// the compiled entry points: `s32`, `s64`, `f32`, `f64`.
fn ptx_class(param: Param, real: &str) -> &'static str {
    match param {
        Param::Value(Scalar::I32) => "s32",
        Param::Value(Scalar::I64) | Param::Read(_) | Param::Write(_) => "s64",
        Param::Value(Scalar::F64) => "f64",
        Param::Value(Scalar::Real) if real == "double" => "f64",
        Param::Value(Scalar::Real) => "f32",
    }
}

#[cfg(test)]
/// The C parameter declaration of `param` (in terms of `X` and `T`).
fn param_c(name: &str, param: Param) -> String {
    match param {
        Param::Value(s) => format!("{} {name}", scalar_c(s)),
        Param::Read(e) => format!("const {}* {name}", elem_c(e)),
        Param::Write(e) => format!("{}* {name}", elem_c(e)),
    }
}

#[cfg(test)]
/// The header of one op: its constants, each kernel's `NAME_PARAMS(T, X)` (the parameter
/// list) and `NAME_ARGS` (the names, to forward them), with a `// ptx` line per
/// instantiation for `scripts/check-kernels.sh`, `PREFIX_INSTANCES(KERNEL)` calling
/// `KERNEL(name)` for every instantiation (the emulator's table), and the shared-memory
/// layouts.
pub(crate) fn header(
    prefix: &str,
    source: &str,
    constants: &[Constant],
    kernels: &[&Kernel],
    layouts: &[&SharedLayout],
) -> String {
    let mut out = format!(
        "// The kernels' interface, generated from {source} (see src/kernel_interface.rs):\n\
         // do not edit; `DIFFBIO_BLESS=1 cargo test -p diffbio-core kernel_headers` rewrites it.\n\
         #pragma once\n\n"
    );
    for c in constants {
        let value = match c.value {
            ConstValue::Int(v) => v.to_string(),
            ConstValue::Float(v) => format!("{v:?}"),
        };
        writeln!(out, "#define {} {value}  // {}", c.name, c.doc).expect("a String");
    }
    for kernel in kernels {
        let upper = kernel.name.to_uppercase();
        let params: Vec<String> = (kernel.params.iter())
            .map(|&(name, param)| param_c(name, param))
            .collect();
        let names: Vec<&str> = kernel.params.iter().map(|&(name, _)| name).collect();
        writeln!(out).expect("a String");
        for &(suffix, real) in kernel.instances.each() {
            let classes: Vec<&str> = (kernel.params.iter())
                .map(|&(_, param)| ptx_class(param, real))
                .collect();
            writeln!(out, "// ptx {}_{suffix} {}", kernel.name, classes.join(" "))
                .expect("a String");
        }
        writeln!(out, "#define {upper}_PARAMS(T, X) {}", params.join(", ")).expect("a String");
        writeln!(out, "#define {upper}_ARGS {}", names.join(", ")).expect("a String");
    }
    writeln!(out, "\n#define {prefix}_INSTANCES(KERNEL) \\").expect("a String");
    for kernel in kernels {
        for &(suffix, _) in kernel.instances.each() {
            writeln!(out, "    KERNEL({}_{suffix}) \\", kernel.name).expect("a String");
        }
    }
    writeln!(out, "    /* end */").expect("a String");
    for layout in layouts {
        writeln!(out, "\n#define {}(PART) \\", layout.name).expect("a String");
        let parts: Vec<String> = (layout.parts.iter())
            .map(|part| {
                let type_c = match part.elem {
                    Elem::U32 => "int",
                    other => elem_c(other),
                };
                let count: Vec<&str> = (part.count.iter())
                    .map(|d| match d {
                        Dim::Rows => "S::ROWS",
                        Dim::Cols => "S::COLS",
                        Dim::PaddedRows => "(S::ROWS + TILE_PAD)",
                        Dim::PaddedCols => "(S::COLS + TILE_PAD)",
                        Dim::Depth => "TILE_DEPTH",
                        Dim::K => "(size_t)k",
                        Dim::D => "(size_t)d",
                        Dim::Lanes => "WARP",
                        Dim::Batches => "(size_t)n_batches",
                        Dim::ClassChunk => "(size_t)class_chunk",
                        Dim::ListK => "(radix ? 0 : (size_t)k)",
                        Dim::RadixCounters => "(radix ? (size_t)RADIX_BUCKETS * (WARP + 1) : 0)",
                    })
                    .collect();
                format!("PART({type_c}, {}, {})", part.name, count.join(" * "))
            })
            .collect();
        // Two parts a line.
        for pair in parts.chunks(2) {
            writeln!(out, "    {} \\", pair.join(" ")).expect("a String");
        }
        writeln!(out, "    /* end */").expect("a String");
    }
    out
}

/// Asserts that the committed header `file` (under `kernels/`) is `expected`; rewrites it
/// instead when `DIFFBIO_BLESS=1`.
#[cfg(test)]
pub(crate) fn assert_header_current(file: &str, expected: &str) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("kernels")
        .join(file);
    if std::env::var("DIFFBIO_BLESS").as_deref() == Ok("1") {
        std::fs::write(&path, expected).expect("write the header");
        return;
    }
    let found = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        found == expected,
        "kernels/{file} is stale: run `DIFFBIO_BLESS=1 cargo test -p diffbio-core kernel_headers` \
         and commit it"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    const PROBE: Kernel = kernel!(KnnEntropy, probe, EachReal, [
        x: Param::Read(Elem::Input), n: INT64, scale: REAL, out: Param::Write(Elem::F64),
    ]);

    #[test]
    fn header_declares_parameters_instances_and_layouts() {
        let layout = SharedLayout {
            name: "PROBE_SHARED",
            parts: &[
                SharedPart {
                    elem: Elem::Real,
                    name: "a",
                    count: &[Dim::Depth, Dim::PaddedRows],
                },
                SharedPart {
                    elem: Elem::U32,
                    name: "j",
                    count: &[Dim::Rows, Dim::K],
                },
            ],
        };
        let constants = [Constant {
            name: "EPS",
            value: ConstValue::Float(1e-8),
            doc: "epsilon",
        }];
        let text = header("PROBE", "probe.rs", &constants, &[&PROBE], &[&layout]);
        assert!(text.contains("#define EPS 1e-8  // epsilon\n"));
        assert!(text
            .contains("#define PROBE_PARAMS(T, X) const X* x, int64_t n, T scale, double* out\n"));
        assert!(text.contains("#define PROBE_ARGS x, n, scale, out\n"));
        assert!(text.contains("// ptx probe_f32 s64 s64 f32 s64\n"));
        assert!(text.contains("// ptx probe_f64 s64 s64 f64 s64\n"));
        assert!(!text.contains("probe_f16"));
        let instances = concat!(
            "#define PROBE_INSTANCES(KERNEL) \\\n",
            "    KERNEL(probe_f32) \\\n",
            "    KERNEL(probe_f64) \\\n",
        );
        assert!(text.contains(instances));
        let parts = concat!(
            "    PART(T, a, TILE_DEPTH * (S::ROWS + TILE_PAD)) ",
            "PART(int, j, S::ROWS * (size_t)k) \\\n",
        );
        assert!(text.contains(parts), "{text}");
        let sizes = LayoutSizes {
            real_bytes: 4,
            rows: 6,
            pad: 1,
            depth: 3,
            k: 5,
            ..LayoutSizes::default()
        };
        // 4·3·7 = 84 → 88, 4·6·5 = 120
        assert_eq!(layout.bytes(sizes), 88 + 120);
    }
}
