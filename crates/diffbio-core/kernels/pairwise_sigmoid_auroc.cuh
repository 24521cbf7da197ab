// The contract of the AUROC-surrogate op (crates/diffbio-core/src/auroc/contract.rs),
// repeated for the kernels; a Rust test checks every define below against it.
//
// out = [value, d value / d T, d value / d s_0, ..., d value / d s_{n-1}].
#pragma once

#define OUT_VALUE 0
#define OUT_GRAD_TEMPERATURE 1
#define OUT_GRAD_SCORES 2
