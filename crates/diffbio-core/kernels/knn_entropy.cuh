// The contract of the batch-mixing op (crates/diffbio-core/src/batch_mixing/contract.rs),
// repeated for the kernels; a Rust test checks every define below against it.
//
// One row of statistics (doubles) per input row, in input row order, after the loss:
// out = [loss, row 0: ST_KAPPA .. ST_BETA + B - 1, row 1: ...]; ST_JSTAR holds an input row.
#pragma once

#define ST_KAPPA 0
#define ST_DMIN 1
#define ST_JSTAR 2
#define ST_GAMMA 3
#define ST_GRAD_KAPPA 4
#define ST_BETA 5

#define EPS 1e-8
#define KAPPA_SHIFT 1e-10
