// The contract of the AUROC-surrogate op (crates/diffbio-core/src/auroc/contract.rs),
// repeated for the kernels; a Rust test checks every define below against it.
//
// out = [value, d value / d T, d value / d s of each centre cell (all n on one device)].
#pragma once

#define OUT_VALUE 0
#define OUT_GRAD_TEMPERATURE 1
#define OUT_GRAD_SCORES 2

// The compaction's counts (crates/diffbio-core/src/auroc/launch.rs reads them back):
// positives, negatives, and the bounds of the centres' run within each class.
#define COUNT_POS 0
#define COUNT_NEG 1
#define COUNT_POS_FIRST 2
#define COUNT_POS_END 3
#define COUNT_NEG_FIRST 4
#define COUNT_NEG_END 5
#define COUNTS 6
